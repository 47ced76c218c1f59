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
    # Feature map the masked RoI features are cropped from (the reference uses P2 only).
    cfg.MODEL.TEXT_HEAD.IN_FEATURE = "p2"
    # Channels of the recognition branch (RoI conv, CNN, BiLSTM and attention decoder); 256 in the paper.
    cfg.MODEL.TEXT_HEAD.CHANNELS = 256
    # Height and width of the masked RoI features fed to the recognizer.
    cfg.MODEL.TEXT_HEAD.POOLER_RESOLUTION = (8, 32)
    # A crop taller than this many times its width is transposed (vertical text).
    cfg.MODEL.TEXT_HEAD.VERTICAL_RATIO = 1.5
    # Weight of the recognition cross-entropy (`loss_rec`).
    cfg.MODEL.TEXT_HEAD.LOSS_WEIGHT = 1.0
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
