#!/usr/bin/env python
"""
Word accuracy of a checkpoint's recognition branch on the ground-truth words, detection factored out: each
validation image at its test size, every readable cared word read with its ground-truth box and polygon
mask (as in training), greedy or beam decoding, compared case-insensitively. Works on the spotter and
on the recognition warm-up's checkpoints, so a training run can be watched for "does it read yet".

    python tools/eval_recognition.py --config-file configs/synth/text_spotter_R_18_FPN_synth.yaml \\
        --weights output/synth/recognition_warmup_R_18/model_0001499.pth --max-images 50
"""
import argparse
import json
from typing import Any, Dict, List, Optional

from detectron2.data import DatasetCatalog

from dld.engine import build_model_from_config, load_config
from dld.evaluation import ground_truth_mapper, read_ground_truth_words, word_accuracy


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--weights", required=True, metavar="FILE", help="checkpoint to read with")
    parser.add_argument("--dataset", default="synth_text_val", help="registered text dataset")
    parser.add_argument("--max-images", type=int, default=0, help="only the first N images (0: all)")
    parser.add_argument("--beam-width", type=int, default=1, help="1: greedy decoding")
    parser.add_argument("--show", type=int, default=10, help="print this many (truth, read) pairs")
    parser.add_argument("--opts", default=[], nargs=argparse.REMAINDER, help="config overrides KEY VALUE, last")
    return parser


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = build_parser().parse_args(argv)
    cfg = load_config(args.config_file, args.opts)
    model = build_model_from_config(cfg, args.weights)
    mapper = ground_truth_mapper(cfg)
    dicts = DatasetCatalog.get(args.dataset)
    dicts = dicts[: args.max_images] if args.max_images > 0 else dicts
    pairs = read_ground_truth_words(model, mapper, dicts, args.beam_width)
    result = {"weights": args.weights, "images": len(dicts), **word_accuracy(pairs)}
    for truth, read in pairs[: args.show]:
        print(f"  {truth!r:>20} -> {read!r}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
