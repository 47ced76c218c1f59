#!/usr/bin/env python
"""
The paper's comparison in one table: on one dataset, the teacher at full resolution, the teacher's weights at
each fixed candidate scale of MODEL.DLD.SCALES ("vanilla multi-scale", TEST.FIXED_SCALE) and each DLD model,
with accuracy (detection, end-to-end without and with the generic/full lexicon, word spotting; H-means in %)
beside cost (GFLOPs per image, images per second, mean selected scale). Prints the Markdown table and writes
it to <output-dir>/dld_table.md and .json (one object per row), each row's evaluation under <output-dir>/<row>/.
With --report-dir it also writes the report of tools/run_dld_demo.py there (report.md/json, the accuracy-vs-GFLOPs
and selected-scale plots, drawn examples, the mean selected scale by the images' text size).

    python tools/dld_table.py --teacher-config configs/synth/text_spotter_R_18_FPN_synth.yaml \\
        --teacher-weights output/synth/text_spotter_R_18/model_final.pth \\
        --dld configs/synth/dld_R_18_FPN_synth_gamma0.1.yaml output/synth/dld_R_18_gamma0.1/model_final.pth \\
        --dld configs/synth/dld_R_18_FPN_synth_gamma0.3.yaml output/synth/dld_R_18_gamma0.3/model_final.pth \\
        --output-dir output/synth/dld_table
    python tools/dld_table.py ... --max-images 20 --opts MODEL.DLD.SCALES "(0.8, 0.5)"

--opts are applied to every model's config.
"""
import argparse
import json
import logging
import os
import re
import shlex
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader
from detectron2.evaluation import inference_on_dataset
from detectron2.utils.logger import setup_logger

from dld.data import TextDatasetMapper
from dld.engine import build_model_from_config
from dld.engine import load_config as load_cfg  # noqa: F401  also the name tools/run_dld_demo.py imports
from dld.evaluation import TextSpottingEvaluator
from dld.evaluation.comparison import markdown_table, table_row, write_table
from dld.evaluation.report import ground_truth_words
from dld.evaluation.scale_by_text_size import image_text_heights
from dld.utils.machine import describe_machine, machine_info

logger = logging.getLogger("dld.dld_table")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher-config", required=True, metavar="FILE", help="yaml of the teacher")
    parser.add_argument("--teacher-weights", required=True, metavar="FILE", help="checkpoint of the teacher")
    parser.add_argument(
        "--dld", nargs=2, action="append", default=[], metavar=("CONFIG", "WEIGHTS"),
        help="a DLD model: its yaml and checkpoint (repeat for several)",
    )
    parser.add_argument("--dataset", default="synth_text_val", help="registered dataset to evaluate on")
    parser.add_argument("--output-dir", default="output/dld_table", help="where the table and evaluations go")
    parser.add_argument("--max-images", type=int, default=0, help="evaluate only the first N images (0: all)")
    parser.add_argument("--report-dir", default="", help="also write the report with its plots there")
    parser.add_argument(
        "--bias-sweep", type=float, nargs="*", default=[], metavar="LAMBDA",
        help="also evaluate the first DLD model at these test-time cost biases (MODEL.DLD.SELECTOR.TEST_COST_BIAS): "
        "rows '<name> lambda=<λ>', drawn as one curve on the accuracy-against-GFLOPs plot",
    )
    parser.add_argument(
        "--opts", default=[], nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs, at the end"
    )
    return parser


def evaluate(
    cfg: CfgNode, model: torch.nn.Module, dataset_name: str, max_images: int, output_dir: str
) -> Dict[str, Any]:
    """The evaluator's metrics of `model` on the (first `max_images` of the) dataset, with its cost keys."""
    dicts = DatasetCatalog.get(dataset_name)
    if max_images > 0:
        dicts = dicts[:max_images]
    loader = build_detection_test_loader(
        dicts, mapper=TextDatasetMapper(cfg, is_train=False), num_workers=cfg.DATALOADER.NUM_WORKERS
    )
    evaluator = TextSpottingEvaluator.from_config(cfg, dataset_name, output_dir)
    return inference_on_dataset(model, loader, evaluator)["text"]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=]+", "_", name).strip("_")


def _dld_name(cfg: CfgNode) -> str:
    """'DLD (gamma=γ)'; the paper's ablations: 'DRS without SKD (gamma=γ)' and 'SKD at x<s>' (one scale)."""
    dld = cfg.MODEL.DLD
    if len(dld.SCALES) == 1:
        return f"SKD at x{float(dld.SCALES[0]):g}"
    if not any((dld.SKD.ROI_WEIGHT, dld.SKD.CONTEXT_WEIGHT, dld.SKD.SEQ_WEIGHT)):
        return f"DRS without SKD (gamma={dld.SELECTOR.COST_GAMMA:g})"
    return f"DLD (gamma={dld.SELECTOR.COST_GAMMA:g})"


def _dld_names(cfgs: Sequence[CfgNode], config_files: Sequence[str]) -> List[str]:
    """:func:`_dld_name` of each model, with the config's name where two models share one."""
    names = [_dld_name(c) for c in cfgs]
    return [
        n if names.count(n) == 1 else f"{n[:-1]}, {os.path.splitext(os.path.basename(f))[0]})"
        for n, f in zip(names, config_files)
    ]


def load_dld_predictions(table_dir: str, names: Sequence[str]) -> Dict[str, List[Dict[str, Any]]]:
    """Each DLD row's text_predictions.json, as its evaluation under `table_dir` wrote it."""
    predictions = {}
    for name in names:
        with open(os.path.join(table_dir, _slug(name), "text_predictions.json")) as f:
            predictions[name] = json.load(f)
    return predictions


def write_table_report(
    rows: Sequence[Dict[str, Any]],
    table_dir: str,
    report_dir: str,
    dld_cfgs: Sequence[CfgNode],
    dld_names: Sequence[str],
    header: Sequence[Tuple[str, str]],
    text_heights: Mapping[str, float],
    ground_truth: Optional[Mapping[str, Sequence[Mapping[str, Any]]]] = None,
) -> Dict[str, str]:
    """The report (:func:`dld.evaluation.report.write_report`) of a table written to `table_dir`; returns its files."""
    from dld.evaluation.report import write_report

    scales = sorted({float(s) for c in dld_cfgs for s in c.MODEL.DLD.SCALES})
    return write_report(rows, report_dir, load_dld_predictions(table_dir, dld_names), header=header,
                        candidate_scales=scales, text_heights=text_heights, ground_truth=ground_truth)


def main(argv: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    args = build_parser().parse_args(argv)
    if MetadataCatalog.get(args.dataset).get("evaluator_type", None) != "text":
        raise ValueError(f"Dataset {args.dataset!r} is not a registered text dataset (evaluator_type 'text')")

    teacher_cfg = load_cfg(args.teacher_config, args.opts)
    scales = [1.0] + [float(s) for s in teacher_cfg.MODEL.DLD.SCALES if float(s) != 1.0]
    runs = []  # (name, cfg, weights)
    for s in scales:
        cfg = teacher_cfg.clone()
        cfg.TEST.FIXED_SCALE = s
        runs.append((f"teacher x{s:g}", cfg, args.teacher_weights))
    dld_cfgs = [load_cfg(config_file, args.opts) for config_file, _ in args.dld]
    dld_names = _dld_names(dld_cfgs, [c for c, _ in args.dld])
    for name, cfg, (config_file, weights) in zip(dld_names, dld_cfgs, args.dld):
        runs.append((name, cfg, weights))
    curves = {}  # row name -> the DLD model it sweeps
    for bias in args.bias_sweep if dld_cfgs else []:
        cfg = dld_cfgs[0].clone()
        cfg.MODEL.DLD.SELECTOR.TEST_COST_BIAS = float(bias)
        curves[f"{dld_names[0]} lambda={bias:g}"] = dld_names[0]
        runs.append((f"{dld_names[0]} lambda={bias:g}", cfg, args.dld[0][1]))

    rows = []
    for name, cfg, weights in runs:
        logger.info(f"Evaluating {name} ({weights}) on {args.dataset}")
        model = build_model_from_config(cfg, weights)
        metrics = evaluate(cfg, model, args.dataset, args.max_images, os.path.join(args.output_dir, _slug(name)))
        rows.append(table_row(name, metrics))
        if name in curves:
            rows[-1]["curve"] = curves[name]
        del model
    json_path, md_path = write_table(rows, args.output_dir)
    print(markdown_table(rows))
    print(f"Written {json_path} and {md_path}")
    if args.report_dir:
        header = [
            ("command", f"`{shlex.join([os.path.relpath(sys.argv[0]), *sys.argv[1:]])}`"),
            ("machine", describe_machine(machine_info())),
            ("data", f"`{args.dataset}`" + (f", first {args.max_images} images" if args.max_images else "")),
        ]
        dicts = DatasetCatalog.get(args.dataset)
        written = write_table_report(rows, args.output_dir, args.report_dir, dld_cfgs, dld_names, header,
                                     image_text_heights(dicts), ground_truth_words(dicts))
        print(f"Written the report ({len(written)} files) to {args.report_dir}")
    return rows


if __name__ == "__main__":
    setup_logger(name="dld")
    setup_logger()
    main()
