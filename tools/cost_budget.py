#!/usr/bin/env python
"""
Budget mode of a DLD model: the test-time cost bias λ (MODEL.DLD.SELECTOR.TEST_COST_BIAS) whose mean GFLOPs per
image on a validation subset is at most --budget-gflops, found by bisection (dld.evaluation.cost_budget). Prints λ,
the mean GFLOPs and selected scale it gives, the unbiased model's and the cheapest choice's, and the config line
that applies it; with --sweep, the same at each λ listed. Writes <output-dir>/cost_budget.json.

    python tools/cost_budget.py --config-file configs/synth/dld_R_18_FPN_synth_gamma0.1.yaml \\
        --weights output/synth/dld_R_18_gamma0.1/model_final.pth --budget-gflops 1.5 --max-images 50
"""
import argparse
import dataclasses
import json
import os
import sys
from typing import List, Optional

from detectron2.data import DatasetCatalog
from detectron2.utils.logger import setup_logger

from dld.data import TextDatasetMapper
from dld.engine.predictor import build_model_from_config, load_config
from dld.evaluation.cost_budget import bias_sweep, find_cost_bias, selector_table
from dld.modeling import DLDTextSpotter


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="yaml of a DLD model")
    parser.add_argument("--weights", required=True, metavar="FILE", help="its checkpoint (student + selector)")
    parser.add_argument("--budget-gflops", type=float, required=True, help="mean GFLOPs per image to fit")
    parser.add_argument("--dataset", default="synth_text_val", help="registered validation dataset")
    parser.add_argument("--max-images", type=int, default=50, help="the first N images of it (0: all)")
    parser.add_argument("--sweep", type=float, nargs="*", default=[], help="also report these biases")
    parser.add_argument("--output-dir", default="output/cost_budget")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides, KEY VALUE pairs")
    return parser


def main(argv: Optional[List[str]] = None) -> dict:
    args = build_parser().parse_args(argv)
    cfg = load_config(args.config_file, args.opts)
    cfg.MODEL.DEVICE = "cpu"
    model = build_model_from_config(cfg, args.weights)
    if not isinstance(model, DLDTextSpotter):
        raise ValueError(f"{args.config_file} is not a DLD model: a cost bias needs a selector")
    dicts = DatasetCatalog.get(args.dataset)
    dicts = dicts[: args.max_images] if args.max_images > 0 else dicts
    mapper = TextDatasetMapper(cfg, is_train=False)
    table = selector_table(model, [mapper(d) for d in dicts])
    budget = find_cost_bias(table, args.budget_gflops)
    result = {
        "config": args.config_file,
        "weights": args.weights,
        "dataset": args.dataset,
        "num_images": len(dicts),
        **dataclasses.asdict(budget),
        "relative_error": budget.relative_error,
        "sweep": bias_sweep(table, args.sweep),
    }
    print(
        f"budget {budget.target_gflops:.4f} GFLOPs/image on {len(dicts)} images of {args.dataset}: "
        f"lambda = {budget.bias:.6g} gives {budget.mean_gflops:.4f} GFLOPs/image "
        f"({100 * budget.relative_error:.2f}% off), mean scale {budget.mean_scale:.3f}; "
        f"unbiased {budget.unbiased_gflops:.4f}, cheapest {budget.cheapest_gflops:.4f}"
        + ("" if budget.feasible else " -- the budget is below the cheapest choice")
    )
    print(f"apply it with: MODEL.DLD.SELECTOR.TEST_COST_BIAS {budget.bias:.6g}")
    for row in result["sweep"]:
        print(f"lambda {row['bias']:g}: {row['mean_gflops']:.4f} GFLOPs/image, mean scale {row['mean_scale']:.3f}")
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "cost_budget.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    setup_logger(name="dld")
    main()
    sys.exit(0)
