#!/usr/bin/env python
"""
Inference cost of the teacher at each fixed candidate scale (1.0 and MODEL.DLD.SCALES, with the teacher's weights
and TEST.FIXED_SCALE) and of DLD models (selector + student at the scale it picks for each image), on the first
images of a registered dataset: GFLOPs per image (fvcore, from the models' outputs), latency of one forward
(median and p90 of --runs timed runs after --warmup runs) and images/s at each batch size, and the peak memory
of a run (CUDA: max_memory_allocated; CPU: growth of the process's RSS). Prints the Markdown table and writes
<output-dir>/benchmark.json and benchmark.md.

    python tools/benchmark.py --teacher-config configs/synth/text_spotter_R_18_FPN_synth.yaml \\
        --teacher-weights output/synth/text_spotter_R_18/model_final.pth \\
        --dld configs/synth/dld_R_18_FPN_synth_gamma0.1.yaml output/synth/dld_R_18_gamma0.1/model_final.pth \\
        --devices cpu cuda --max-images 16 --batch-sizes 1 8

The arguments are tools/dld_table.py's (--max-images: the first K images, default 8; --output-dir default
output/benchmark) plus the timing's. --opts are applied to every model's config. Set OMP_NUM_THREADS to fix the
number of CPU threads.

--onnx adds, for every model on the CPU, the same images and batch sizes through its ONNX export (written to
<output-dir>/onnx/ by dld.export.export_onnx; the teacher is exported once and run at each fixed scale) served by
onnxruntime (dld.export.OnnxTextSpotter, images one by one): rows "cpu (onnxruntime)". Needs
requirements-export.txt.
"""
import argparse
import json
import logging
import os
import shlex
import sys
from typing import Any, Dict, List, Optional, Tuple

import torch
from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog
from detectron2.utils.logger import setup_logger

from dld.data import TextDatasetMapper
from dld.evaluation.benchmark import benchmark_markdown, benchmark_model, memory_kind
from dld.engine import build_model_from_config
from dld.modeling import DLDTextSpotter
from dld.utils.machine import describe_machine, machine_info

# A sibling tool: this script's folder is on sys.path when it runs.
from dld_table import _dld_names, load_cfg
from dld_table import build_parser as build_table_parser

logger = logging.getLogger("dld.benchmark")


def build_parser() -> argparse.ArgumentParser:
    """tools/dld_table.py's arguments (models, dataset, --max-images: number of images, --opts), then the timing's."""
    parser = build_table_parser()
    parser.description = __doc__
    parser.set_defaults(output_dir="output/benchmark", max_images=8)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before the timed ones, per batch size")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per batch size")
    parser.add_argument(
        "--devices", nargs="+", choices=["cpu", "cuda"], default=None,
        help="where to run (default: cpu, and cuda when torch.cuda.is_available())",
    )
    parser.add_argument(
        "--onnx", action="store_true",
        help="also each model exported to ONNX (tools/export_model.py, into <output-dir>/onnx/) and run with "
        "onnxruntime on the CPU: rows 'cpu (onnxruntime)' beside the eager ones, same images and scales",
    )
    parser.add_argument(
        "--onnx-threads", type=int, default=0, help="onnxruntime intra-op threads (0: as many as torch uses)"
    )
    return parser


def onnx_rows(args, name: str, cfg: CfgNode, model, inputs, eager_rows, exports: Dict[str, str]) -> List[Dict]:
    """
    Rows of `model` exported to ONNX and served by dld.export.OnnxTextSpotter on the same inputs and batch sizes.
    A plain spotter is exported once and run at each fixed scale; GFLOPs are the eager row's (same scales).
    """
    from dld.export import OnnxTextSpotter, export_onnx

    is_dld = isinstance(model, DLDTextSpotter)
    key = name if is_dld else f"spotter:{args.teacher_weights}"
    if key not in exports:
        exports[key] = os.path.join(args.output_dir, "onnx", name.replace(" ", "_") if is_dld else "teacher")
        export_onnx(model, cfg, exports[key], inputs[0])
    threads = args.onnx_threads or torch.get_num_threads()
    runner = OnnxTextSpotter(exports[key], fixed_scale=None if is_dld else cfg.TEST.FIXED_SCALE, threads=threads)
    rows = []
    for eager, row in zip(eager_rows, benchmark_model(runner, inputs, args.batch_sizes, args.warmup, args.runs)):
        if row["mean_scale"] == eager["mean_scale"]:
            row["gflops"] = eager["gflops"]
        rows.append({"name": name, "device": "cpu (onnxruntime)", **row})
    return rows


def model_runs(args: argparse.Namespace) -> List[Tuple[str, CfgNode, str]]:
    """(name, cfg, weights): the teacher at 1.0 and at each scale of its MODEL.DLD.SCALES, then each DLD model."""
    teacher_cfg = load_cfg(args.teacher_config, args.opts)
    runs = []
    for s in [1.0] + [float(s) for s in teacher_cfg.MODEL.DLD.SCALES if float(s) != 1.0]:
        cfg = teacher_cfg.clone()
        cfg.TEST.FIXED_SCALE = s
        runs.append((f"teacher x{s:g}", cfg, args.teacher_weights))
    dld_cfgs = [load_cfg(config_file, args.opts) for config_file, _ in args.dld]
    names = _dld_names(dld_cfgs, [c for c, _ in args.dld])
    runs += [(name, cfg, weights) for name, cfg, (_, weights) in zip(names, dld_cfgs, args.dld)]
    return runs


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = build_parser().parse_args(argv)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in devices and not torch.cuda.is_available():
        raise ValueError("--devices cuda: torch.cuda.is_available() is False on this machine")
    dicts = DatasetCatalog.get(args.dataset)
    if args.max_images > 0:
        dicts = dicts[: args.max_images]
    if not dicts:
        raise ValueError(f"dataset {args.dataset!r} has no images")

    rows, exports = [], {}
    for name, cfg, weights in model_runs(args):
        mapper = TextDatasetMapper(cfg, is_train=False)
        inputs = [mapper(d) for d in dicts]
        for device in devices:
            cfg = cfg.clone()
            cfg.MODEL.DEVICE = device
            logger.info(f"Benchmarking {name} ({weights}) on {device}, {len(inputs)} images")
            model = build_model_from_config(cfg, weights)
            if isinstance(model, DLDTextSpotter):
                model.teacher.to("cpu")  # unused at inference: keep its weights out of the device's peak memory
            eager_rows = benchmark_model(model, inputs, args.batch_sizes, args.warmup, args.runs)
            rows += [{"name": name, "device": device, **row} for row in eager_rows]
            if args.onnx and device == "cpu":
                rows += onnx_rows(args, name, cfg, model, inputs, eager_rows, exports)
            del model
            if device == "cuda":
                torch.cuda.empty_cache()

    result = {
        "command": "python tools/benchmark.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_info(),
        "dataset": args.dataset,
        "num_images": len(dicts),
        "warmup": args.warmup,
        "runs": args.runs,
        "memory": {d: memory_kind(torch.device(d)) for d in devices},
        "rows": rows,
    }
    table = benchmark_markdown(rows)
    notes = "\n".join(f"- peak memory, {kind}" for kind in result["memory"].values())
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "benchmark.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(args.output_dir, "benchmark.md"), "w") as f:
        f.write(
            f"# Inference benchmark\n\n`{result['command']}`\n\nMachine: {describe_machine(result['machine'])}\n\n"
            f"{len(dicts)} images of `{args.dataset}`; latency of one forward of a batch, {args.runs} timed runs "
            f"after {args.warmup} warm-up runs.\n\n{table}\n\n{notes}\n"
        )
    print(table)
    print(notes)
    print(f"Written {os.path.join(args.output_dir, 'benchmark.json')} and benchmark.md")
    return result


if __name__ == "__main__":
    setup_logger(name="dld")
    main()
