#!/usr/bin/env python
"""
Train and evaluate the DLD text spotter: Detectron2's training script with the text mapper, the text
evaluator and AdamW. Examples:

    python tools/train_net.py --config-file configs/synth/text_spotter_R_18_FPN_synth.yaml
    python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS output/.../model_final.pth
    python tools/train_net.py --config-file ... --resume          # continue from the last checkpoint
    python tools/train_net.py --config-file ... --num-gpus 2      # DDP through detectron2's launch
"""
import logging
import os

import detectron2.utils.comm as comm
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup, launch
from detectron2.evaluation import DatasetEvaluators, verify_results
from detectron2.utils.logger import setup_logger

from dld import add_dld_config
from dld.data import TextDatasetMapper, count_unencodable_words
from dld.evaluation import TextSpottingEvaluator
from dld.modeling import build_charset_encoder
from dld.solver import build_optimizer

logger = logging.getLogger("dld")


class Trainer(DefaultTrainer):
    @classmethod
    def build_train_loader(cls, cfg):
        encoder = build_charset_encoder(cfg)
        for name in cfg.DATASETS.TRAIN:
            count_unencodable_words(DatasetCatalog.get(name), encoder, name)
        return build_detection_train_loader(cfg, mapper=TextDatasetMapper(cfg, is_train=True))

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


def setup(args):
    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="dld")
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        if hasattr(model, "load_teacher"):
            model.load_teacher(init_student=False)
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


def invoke_main() -> None:
    args = default_argument_parser().parse_args()
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
