#!/usr/bin/env python
"""
Export a trained text spotter for CPU serving: the spotter (a plain TextSpotterRCNN, or DLD's student) and, for DLD,
the selector, as ONNX graphs traced through Detectron2's TracingAdapter, into --output (spotter.onnx, selector.onnx).
Serve them with `dld.export.OnnxTextSpotter(DIR)` (onnxruntime; `pip install -r requirements-export.txt`).

    python tools/export_model.py --config-file configs/synth/text_spotter_R_18_FPN_synth.yaml \\
        --weights output/synth/text_spotter_R_18/model_final.pth --output output/export/spotter \\
        --check datasets/synth_text/val/images/img_1.jpg 'datasets/synth_text/val/images/img_1?.jpg'

--check runs the eager model and the exported one on those images (one by one, at the test-time size) and prints
per image the words of each, the lowest box IoU of paired words, whether the transcriptions agree and the scales;
it exits with status 1 when any image disagrees. --sample-image is the image the trace follows (default: the first
checked image): it only picks the path through the model, the graphs take any image size and word count.
"""
import argparse
import glob
import json
import logging
import os
import sys
from typing import List, Optional

import torch
from detectron2.utils.logger import setup_logger
from tabulate import tabulate

from dld.data import TextDatasetMapper
from dld.engine.predictor import build_model_from_config, load_config
from dld.export import OnnxTextSpotter, compare_outputs, expected_metadata, export_onnx, outputs_agree

logger = logging.getLogger("dld.export_model")

DEFAULT_SAMPLE = "datasets/synth_text/val/images/img_1.jpg"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--weights", required=True, metavar="FILE", help="checkpoint of the model (DLD: student + selector)")
    parser.add_argument("--output", required=True, metavar="DIR", help="where spotter.onnx (and selector.onnx) go")
    parser.add_argument("--sample-image", default="", metavar="FILE", help="image the trace follows")
    parser.add_argument("--check", nargs="*", default=[], metavar="IMAGE", help="images (or globs) to compare on")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads for --check (0: its default)")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides, KEY VALUE pairs")
    return parser


def _expand(patterns: List[str]) -> List[str]:
    files = []
    for p in patterns:
        matches = sorted(glob.glob(p))
        if not matches:
            raise FileNotFoundError(f"--check {p}: no such file")
        files += matches
    return files


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_config(args.config_file, args.opts)
    cfg.MODEL.DEVICE = "cpu"
    check = _expand(args.check)
    sample = args.sample_image or (check[0] if check else DEFAULT_SAMPLE)
    if not os.path.isfile(sample):
        raise FileNotFoundError(f"--sample-image {sample} does not exist")
    model = build_model_from_config(cfg, args.weights)
    mapper = TextDatasetMapper(cfg, is_train=False)
    paths = export_onnx(model, cfg, args.output, mapper({"file_name": sample, "image_id": 0}))
    for role, path in paths.items():
        print(f"{role}: {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
    if not check:
        return 0
    runner = OnnxTextSpotter(args.output, expected=expected_metadata(cfg), threads=args.threads)
    rows = []
    for f in check:
        x = mapper({"file_name": f, "image_id": 0})
        with torch.no_grad():
            eager = model([x])
        row = compare_outputs(eager, runner([x]))[0]
        rows.append({"image": f, "size": "x".join(str(v) for v in x["image"].shape[1:]), **row, "agree": outputs_agree(row)})
    print(tabulate(rows, headers="keys", floatfmt=".6f"))
    with open(os.path.join(args.output, "check.json"), "w") as out:
        json.dump(rows, out, indent=2)
    agree = sum(r["agree"] for r in rows)
    print(f"{agree}/{len(rows)} images agree (same words, box IoU >= 0.99, same transcriptions, same scale)")
    return 0 if agree == len(rows) else 1


if __name__ == "__main__":
    setup_logger(name="dld")
    sys.exit(main())
