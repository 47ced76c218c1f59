"""All configuration keys the project adds to Detectron2's defaults."""
from detectron2.config import CfgNode as CN

__all__ = ["add_dld_config"]


def add_dld_config(cfg: CN) -> None:
    """Add the text-spotting and DLD keys to a config made by `detectron2.config.get_cfg()`."""
    # ---------------------------------------------------------------- recognition branch (TextROIHeads)
    cfg.MODEL.TEXT_HEAD = CN()
    # Characters the recognizer can read; empty means the 95 printable ASCII characters.
    cfg.MODEL.TEXT_HEAD.CHARSET = ""
    # Longest word the recognizer reads; longer words stay detection targets but get no recognition loss.
    cfg.MODEL.TEXT_HEAD.MAX_LENGTH = 32
    # False: words are read in lower case (upper-case letters leave the classes), as the case-insensitive
    # ICDAR end-to-end protocols score them; fewer classes let a small recognizer learn sooner.
    cfg.MODEL.TEXT_HEAD.CASE_SENSITIVE = True
    # Feature map the masked RoI features are cropped from (the reference uses P2 only), or "image": each word
    # cut out of the network's input image with RoIAlign and read by a CRNN stem of its own (CPU recipe: it
    # shares nothing with the detector and learns as fast as a recognizer on rectified crops).
    cfg.MODEL.TEXT_HEAD.IN_FEATURE = "p2"
    # "image" path: (height, width) of the crops, and the margin grown around each box on every side, as a
    # fraction of the box height.
    cfg.MODEL.TEXT_HEAD.CROP_SIZE = (32, 128)
    cfg.MODEL.TEXT_HEAD.CROP_MARGIN = 0.1
    # "attention": the additive-attention LSTM decoder (the paper); "ctc": a linear CTC classifier on the
    # encoder's columns, greedy or prefix-beam decoding (CPU recipe: no Python loop over characters in
    # training, and it aligns from far fewer samples).
    cfg.MODEL.TEXT_HEAD.DECODER = "attention"
    # BiLSTM layers of the sequence encoder (2 in the paper).
    cfg.MODEL.TEXT_HEAD.ENCODER_LAYERS = 2
    # Channels of the recognition branch (RoI conv, CNN, BiLSTM and attention decoder); 256 in the paper.
    cfg.MODEL.TEXT_HEAD.CHANNELS = 256
    # Height and width of the masked RoI features fed to the recognizer.
    cfg.MODEL.TEXT_HEAD.POOLER_RESOLUTION = (8, 32)
    # A crop taller than this many times its width is transposed (vertical text).
    cfg.MODEL.TEXT_HEAD.VERTICAL_RATIO = 1.5
    # Weight of the recognition cross-entropy (`loss_rec`).
    cfg.MODEL.TEXT_HEAD.LOSS_WEIGHT = 1.0
    # Weight of an auxiliary CTC loss on the encoder states of the attention decoder (0 = off, the reference).
    # Training only: it speeds up learning from scratch; reading is the attention decoder's. Unused with "ctc".
    cfg.MODEL.TEXT_HEAD.CTC_LOSS_WEIGHT = 0.0
    # Extra copies of each ground-truth word the recognizer trains on, with jittered boxes: more recognition
    # samples per image at little cost, and robustness to imprecise predicted boxes. 0 = the reference.
    cfg.MODEL.TEXT_HEAD.TRAIN_JITTER_COPIES = 0
    # Largest move of a jittered box corner, as a fraction of the box width (x) or height (y).
    cfg.MODEL.TEXT_HEAD.TRAIN_JITTER_RATIO = 0.1
    # Beam width at test time; 1 is greedy decoding.
    cfg.MODEL.TEXT_HEAD.BEAM_WIDTH = 1
    # Predicted masks are binarised at this probability before they guide recognition and become polygons.
    cfg.MODEL.TEXT_HEAD.MASK_THRESHOLD = 0.5
    # approxPolyDP epsilon for output polygons, as a fraction of the contour perimeter.
    cfg.MODEL.TEXT_HEAD.POLYGON_EPSILON = 0.01

    # ---------------------------------------------------------------- DLD (teacher, student, selector)
    cfg.MODEL.DLD = CN()
    # Candidate scales of the student's input, relative to the teacher's resolution.
    cfg.MODEL.DLD.SCALES = (0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
    cfg.MODEL.DLD.TEACHER = CN()
    # Yaml of the teacher's architecture where it differs from the student's; empty = the student's config.
    cfg.MODEL.DLD.TEACHER.CONFIG = ""
    # Checkpoint of the trained teacher, loaded after the student's weights (MODEL.WEIGHTS or a resume).
    cfg.MODEL.DLD.TEACHER.WEIGHTS = ""
    # Start the student from the teacher's checkpoint when not resuming (the reference does).
    cfg.MODEL.DLD.TEACHER.INIT_STUDENT = True
    # Also write the frozen teacher into the DLD checkpoints (off: checkpoints hold student and selector).
    cfg.MODEL.DLD.TEACHER.SAVE = False
    cfg.MODEL.DLD.SELECTOR = CN()
    # Entry of the DLD_SELECTOR registry.
    cfg.MODEL.DLD.SELECTOR.NAME = "ResolutionSelector"
    # Width of the selector's first conv (32 in the reference).
    cfg.MODEL.DLD.SELECTOR.BASE_CHANNELS = 32
    # Longer side of the thumbnail the selector reads; 0 = the full teacher-resolution image (the reference).
    cfg.MODEL.DLD.SELECTOR.INPUT_SIZE = 256
    # Initial Gumbel-softmax temperature tau0.
    cfg.MODEL.DLD.SELECTOR.TEMPERATURE = 5.0
    # tau = tau0 * decay ** (iteration / ITERS_PER_EPOCH), the reference's per-epoch schedule.
    cfg.MODEL.DLD.SELECTOR.TEMPERATURE_DECAY = 0.965
    # Iterations per "epoch" of the temperature schedule (about 395 in the reference at batch 24).
    cfg.MODEL.DLD.SELECTOR.ITERS_PER_EPOCH = 395
    # True: sample the scale at test time as the reference does (not repeatable); False: argmax.
    cfg.MODEL.DLD.SELECTOR.TEST_SAMPLING = False
    # Accuracy term: "kl" to the teacher's recognition distributions (paper) or "ce" to the ground truth (code).
    cfg.MODEL.DLD.SELECTOR.ACCURACY_MODE = "kl"
    # gamma, the weight of the cost term (0.1 and 0.3 are the released settings).
    cfg.MODEL.DLD.SELECTOR.COST_GAMMA = 0.1
    # lambda, a cost bias chosen at test time without retraining: the chosen scale is the argmax of the logits
    # minus lambda times each scale's normalised cost T_i / T_teacher (0 = the plain argmax; larger = cheaper).
    # A budget in mean GFLOPs per image picks it by bisection (dld.evaluation.cost_budget, tools/cost_budget.py).
    cfg.MODEL.DLD.SELECTOR.TEST_COST_BIAS = 0.0
    cfg.MODEL.DLD.COST = CN()
    # "flops": measured FLOPs of the whole student T_i / T_teacher (fvcore, RoI heads at the fixed counts below);
    # "backbone": of backbone + FPN + RPN only, the paper's reported measure (~ s ** 2); "power": the
    # reference's proxy s ** 1.5.
    cfg.MODEL.DLD.COST.TYPE = "flops"
    # Fixed RoIs for the box head when counting FLOPs; -1 = RPN.POST_NMS_TOPK_TEST.
    cfg.MODEL.DLD.COST.NUM_PROPOSALS = -1
    # Fixed detections for the mask and text heads when counting FLOPs (about a typical word count; the
    # per-word cost does not shrink with the scale, so the cap of 100 would flatten the cost term);
    # -1 = TEST.DETECTIONS_PER_IMAGE.
    cfg.MODEL.DLD.COST.NUM_DETECTIONS = 10
    cfg.MODEL.DLD.SKD = CN()
    # Teacher beam sequences used for sequence-level distillation (the reference code uses 1).
    cfg.MODEL.DLD.SKD.TOPK = 3
    # Teacher beam width; at least TOPK.
    cfg.MODEL.DLD.SKD.BEAM_WIDTH = 5
    # "probability": weights = softmax of the teacher's sequence log-probabilities (paper); "uniform" (code).
    cfg.MODEL.DLD.SKD.SEQ_WEIGHTING = "probability"
    # Weights of the RoI-feature L2, hidden-state L2 and sequence KD terms (all 1.0 in the reference).
    cfg.MODEL.DLD.SKD.ROI_WEIGHT = 1.0
    cfg.MODEL.DLD.SKD.CONTEXT_WEIGHT = 1.0
    cfg.MODEL.DLD.SKD.SEQ_WEIGHT = 1.0

    # ---------------------------------------------------------------- training input
    # Integer rotation angle range in degrees drawn per image (the reference draws from [-15, 15)); (0, 0) is off.
    cfg.INPUT.ROTATION_ANGLES = (0, 0)
    # Probability of applying the rotation above.
    cfg.INPUT.ROTATION_PROB = 0.0
    # Random crop that keeps at least one whole word; words it cuts become don't care.
    cfg.INPUT.TEXT_CROP = CN()
    cfg.INPUT.TEXT_CROP.ENABLED = False
    # Smallest crop side as a fraction of the image side.
    cfg.INPUT.TEXT_CROP.MIN_SIDE_RATIO = 0.5
    # Photometric jitter (brightness, contrast, saturation) on training images.
    cfg.INPUT.COLOR_JITTER = False
    # Recognition warm-up stage (MODEL.META_ARCHITECTURE "TextRecognitionWarmup"): train on the words of the
    # training images cut out one per small canvas (dld.data.WordCropMapper) instead of on whole images.
    cfg.INPUT.WORD_CROP = CN()
    cfg.INPUT.WORD_CROP.ENABLED = False
    # Canvas (height, width) in pixels; a multiple of the backbone's size divisibility avoids padding.
    # Words keep their native size unless they do not fit.
    cfg.INPUT.WORD_CROP.SIZE = (32, 128)
    # Pixels of context kept around each word (before any downscaling to fit the canvas).
    cfg.INPUT.WORD_CROP.MARGIN = 4.0
    # Probability that a word is scaled to fill the canvas instead of keeping its native size: big, sharp
    # words let the attention decoder find its alignment early; native sizes match the joint training.
    cfg.INPUT.WORD_CROP.FILL_PROB = 0.0

    # ---------------------------------------------------------------- embedded synthetic data
    cfg.DATASETS.SYNTH = CN()
    # Images in synth_text_train and synth_text_val.
    cfg.DATASETS.SYNTH.NUM_TRAIN = 2000
    cfg.DATASETS.SYNTH.NUM_VAL = 300
    # Longest side of a rendered image, in pixels.
    cfg.DATASETS.SYNTH.IMAGE_SIZE = 384
    # Range of text height as a fraction of the image's longer side (drawn per image, log-uniform).
    cfg.DATASETS.SYNTH.TEXT_HEIGHT_RANGE = (0.035, 0.2)
    # Words per image (inclusive range).
    cfg.DATASETS.SYNTH.WORDS_PER_IMAGE = (1, 6)
    # Seed of the generator; the same seed writes byte-identical data.
    cfg.DATASETS.SYNTH.SEED = 0
    # Extra directory of .ttf/.otf fonts; empty uses the fonts that ship with matplotlib.
    cfg.DATASETS.SYNTH.FONTS_DIR = ""
    # Probabilities of a word being straight, rotated, perspective-warped or curved; (1, 0, 0, 0) is the easy
    # level of straight words only, whose axis-aligned boxes are already rectified crops.
    cfg.DATASETS.SYNTH.GEOMETRY_PROBS = (0.45, 0.25, 0.15, 0.15)

    # ---------------------------------------------------------------- bad input (dld.data.checks)
    # A training word that cannot be a target (fewer than 3 points, an odd number or a NaN/inf coordinate, zero
    # area, entirely outside its image, an RLE mask, a transcription that is not a string), a record without a
    # usable size, and in the raw datasets a malformed ground-truth line or an unreadable file: "error" stops
    # with a message naming the file (and line or annotation) and the problem, before training starts; "skip"
    # drops it, counts it and logs it. Self-intersecting polygons are kept either way (counted and logged).
    cfg.DATASETS.ON_BAD_ANNOTATION = "error"
    # A training image that cannot be decoded (corrupt, truncated, empty, beyond Pillow's decompression-bomb
    # limit) or whose size differs from its record: "error" stops with a message naming the file; "skip" leaves
    # it out (the loader takes the next image) and logs it with a running count. Evaluation always stops on
    # one: skipping it would change the metrics.
    cfg.DATALOADER.ON_BAD_IMAGE = "error"

    # ---------------------------------------------------------------- optimisation
    # "SGD" (Detectron2's default) or "ADAMW" (the reference trains every stage with AdamW).
    cfg.SOLVER.OPTIMIZER = "SGD"

    # ---------------------------------------------------------------- evaluation
    cfg.TEST.TEXT = CN()
    # IoU above which a prediction matches a ground-truth word (0.5 in the ICDAR protocols).
    cfg.TEST.TEXT.IOU_THRESHOLD = 0.5
    # A prediction more than this fraction of whose area lies inside one don't-care word is ignored
    # (ICDAR AREA_PRECISION_CONSTRAINT).
    cfg.TEST.TEXT.AREA_PRECISION_THRESHOLD = 0.5
    # Predictions with a detection score below this are not evaluated.
    cfg.TEST.TEXT.SCORE_THRESHOLD = 0.5
    # TextSpotterRCNN only: every test image is resized by this factor before the backbone (bilinear, like the
    # DLD student's input) and its words mapped back, i.e. "vanilla multi-scale" at one fixed scale; 1.0 = off.
    cfg.TEST.FIXED_SCALE = 1.0
    # Learning curve during training (dld.engine.LearningCurveHook, OUTPUT_DIR/learning_curve.jsonl, read by
    # tools/learning_curve.py): every PERIOD iterations (0 = off) and after the last, word accuracy on the
    # ground-truth words and det/E2E H-means on the first NUM_IMAGES images of DATASET, against the training
    # wall time without these evaluations.
    cfg.TEST.CURVE = CN()
    cfg.TEST.CURVE.PERIOD = 0
    # Empty: the first of DATASETS.TEST.
    cfg.TEST.CURVE.DATASET = ""
    cfg.TEST.CURVE.NUM_IMAGES = 100
    # False: word accuracy only (the recognition warm-up, whose detector does not train).
    cfg.TEST.CURVE.END_TO_END = True
