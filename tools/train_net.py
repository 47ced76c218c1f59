#!/usr/bin/env python
"""
Train and evaluate the DLD text spotter: Detectron2's training script with the text mapper, the text
evaluator and AdamW. Trains the model of --config-file (recognition warm-up, spotter or DLD) into its
OUTPUT_DIR, evaluating every TEST.EVAL_PERIOD iterations; --eval-only evaluates MODEL.WEIGHTS on DATASETS.TEST.
Config overrides are KEY VALUE pairs at the end of the command, without a flag (tools/demo.py and the other
tools take them after --opts). Examples:

    python tools/train_net.py --config-file configs/synth/text_spotter_R_18_FPN_synth.yaml
    python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS output/.../model_final.pth
    python tools/train_net.py --config-file ... --resume          # continue from the last checkpoint
    python tools/train_net.py --config-file ... --num-gpus 2      # DDP through detectron2's launch
"""
import logging
import os
import weakref

import detectron2.utils.comm as comm
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer, TrainerBase, default_argument_parser, default_setup, launch
from detectron2.evaluation import DatasetEvaluators, inference_on_dataset, verify_results
from detectron2.utils.logger import setup_logger

from dld.data import (
    TextDatasetMapper,
    WordCropMapper,
    build_charset_encoder,
    count_unencodable_words,
    get_checked_dataset_dicts,
)
from dld.engine import (
    AtomicCheckpointer,
    LearningCurveHook,
    build_finite_trainer,
    build_model_from_config,
    create_ddp_model,
    load_config,
)
from dld.evaluation import TextSpottingEvaluator, ground_truth_mapper, read_ground_truth_words, word_accuracy
from dld.solver import build_optimizer

logger = logging.getLogger("dld")


class Trainer(DefaultTrainer):
    def __init__(self, cfg):
        """
        DefaultTrainer's constructor with three changes: DDP also on CPU (Gloo), an inner trainer that stops on
        a non-finite loss or gradient before the optimizer step, and checkpoints written atomically.
        """
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):  # setup_logger is not called for d2
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        # The recognition warm-up stage leaves the detection heads without gradients.
        model = create_ddp_model(
            model, broadcast_buffers=False, find_unused_parameters=cfg.INPUT.WORD_CROP.ENABLED
        )
        self._trainer = build_finite_trainer(cfg, model, data_loader, optimizer)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = AtomicCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    def train(self):
        try:
            return super().train()
        except FloatingPointError:
            last = self.checkpointer.get_checkpoint_file() if self.checkpointer.has_checkpoint() else None
            logger.error(
                f"Training stopped at iteration {self.iter} on a non-finite value. The last checkpoint "
                + (f"{last} was written before it and is intact; " if last else "does not exist yet; ")
                + "fix the cause (e.g. a lower SOLVER.BASE_LR, SOLVER.CLIP_GRADIENTS) and restart with --resume."
            )
            raise

    @classmethod
    def build_train_loader(cls, cfg):
        dicts = get_checked_dataset_dicts(
            cfg.DATASETS.TRAIN, cfg.DATASETS.ON_BAD_ANNOTATION, cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
        )
        count_unencodable_words(dicts, build_charset_encoder(cfg), ", ".join(cfg.DATASETS.TRAIN))
        # The recognition warm-up stage trains on word crops of the same images.
        mapper = WordCropMapper(cfg) if cfg.INPUT.WORD_CROP.ENABLED else TextDatasetMapper(cfg, is_train=True)
        return build_detection_train_loader(cfg, mapper=mapper, dataset=dicts)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(cfg, dataset_name, mapper=TextDatasetMapper(cfg, is_train=False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type", None)
        if evaluator_type == "text":
            return DatasetEvaluators([TextSpottingEvaluator.from_config(cfg, dataset_name, output_folder)])
        raise NotImplementedError(f"no evaluator for dataset {dataset_name} of type {evaluator_type!r}")

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    def build_hooks(self):
        """DefaultTrainer's hooks, plus the learning curve (TEST.CURVE) before the writers."""
        ret = super().build_hooks()
        curve = self.cfg.TEST.CURVE
        if curve.PERIOD > 0 and not (curve.DATASET or self.cfg.DATASETS.TEST):
            logger.warning("TEST.CURVE.PERIOD > 0 but no TEST.CURVE.DATASET nor DATASETS.TEST: no learning curve")
        elif curve.PERIOD > 0:
            ret.insert(len(ret) - 1 if comm.is_main_process() else len(ret), LearningCurveHook(
                curve.PERIOD, lambda: curve_metrics(self.cfg, self.model), self.cfg.OUTPUT_DIR
            ))
        return ret


def curve_metrics(cfg, model) -> dict:
    """Word accuracy on ground-truth words and, with TEST.CURVE.END_TO_END, det and E2E H-means (%)."""
    curve = cfg.TEST.CURVE
    dataset = curve.DATASET or cfg.DATASETS.TEST[0]
    dicts = DatasetCatalog.get(dataset)[: curve.NUM_IMAGES]
    model = model.module if hasattr(model, "module") else model
    was_training = model.training
    model.eval()
    try:
        metrics = word_accuracy(read_ground_truth_words(model, ground_truth_mapper(cfg), dicts))
        if curve.END_TO_END:
            loader = build_detection_test_loader(dicts, mapper=TextDatasetMapper(cfg, is_train=False), num_workers=0)
            evaluator = TextSpottingEvaluator.from_config(cfg, dataset)
            text = inference_on_dataset(model, loader, evaluator)["text"]
            metrics.update(det_hmean=100 * text["det_hmean"], e2e_hmean=100 * text["e2e_hmean"])
    finally:
        model.train(was_training)
    metrics["word_accuracy"] *= 100
    return metrics


def setup(args):
    cfg = load_config(args.config_file, args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="dld")
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        # With --resume, the last checkpoint of OUTPUT_DIR where there is one. DLD: student and selector only,
        # the teacher plays no part in inference.
        checkpointer = DetectionCheckpointer(torch.nn.Module(), save_dir=cfg.OUTPUT_DIR)
        resume = args.resume and checkpointer.has_checkpoint()
        model = build_model_from_config(cfg, checkpointer.get_checkpoint_file() if resume else cfg.MODEL.WEIGHTS)
        res = Trainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, res)
        return res
    trainer = Trainer(cfg)
    resumed = args.resume and trainer.checkpointer.has_checkpoint()
    trainer.resume_or_load(resume=args.resume)
    model = trainer.model.module if hasattr(trainer.model, "module") else trainer.model
    if hasattr(model, "load_teacher"):
        # DLD: the frozen teacher is loaded after the student's weights, and starts the student when not resuming.
        model.load_teacher(init_student=cfg.MODEL.DLD.TEACHER.INIT_STUDENT and not resumed and not cfg.MODEL.WEIGHTS)
    return trainer.train()


def build_parser():
    """Detectron2's training arguments, with this tool's description and examples in --help."""
    parser = default_argument_parser()
    parser.description = __doc__
    return parser


def invoke_main() -> None:
    args = build_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


if __name__ == "__main__":
    invoke_main()
