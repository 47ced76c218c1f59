#!/usr/bin/env python
"""
Render the embedded synthetic scene-text dataset (`synth_text_train` / `synth_text_val`) to disk.

Sizes, text heights, seed and fonts come from `cfg.DATASETS.SYNTH` of the given config. A split that already
exists with the same settings (its meta.json) is skipped, so re-running is cheap; `--force` regenerates it.

    python tools/generate_synthetic_data.py --config-file configs/synth/text_spotter_R_18_FPN_synth.yaml
    python tools/generate_synthetic_data.py --num-train 1000 --splits train --output /tmp/datasets
    python tools/generate_synthetic_data.py --config-file ... --opts DATASETS.SYNTH.IMAGE_SIZE 512
"""
import argparse
import logging
import os
import time
from typing import List, Optional

from detectron2.config import CfgNode, get_cfg

from dld import add_dld_config
from dld.data.synthetic import SynthConfig, generate_split, split_is_current, synthetic_split_dir

logger = logging.getLogger("dld.generate_synthetic_data")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="", metavar="FILE", help="Detectron2 yaml; defaults when omitted")
    parser.add_argument(
        "--output",
        default=os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets")),
        help="datasets root, splits go to <output>/synth_text/<split> (default: $DETECTRON2_DATASETS or ./datasets)",
    )
    parser.add_argument("--splits", nargs="+", default=["train", "val"], choices=["train", "val"])
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--fonts-dir", default=None, help="extra .ttf/.otf fonts (overrides DATASETS.SYNTH.FONTS_DIR)")
    parser.add_argument("--seed", type=int, default=None, help="overrides DATASETS.SYNTH.SEED")
    parser.add_argument("--num-train", type=int, default=None, help="overrides DATASETS.SYNTH.NUM_TRAIN")
    parser.add_argument("--num-val", type=int, default=None, help="overrides DATASETS.SYNTH.NUM_VAL")
    parser.add_argument("--force", action="store_true", help="regenerate splits that are already up to date")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--opts", default=[], nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs, at the end"
    )
    return parser


def setup_cfg(args: argparse.Namespace) -> CfgNode:
    cfg = get_cfg()
    add_dld_config(cfg)
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    synth = cfg.DATASETS.SYNTH
    for key, value in (
        ("FONTS_DIR", args.fonts_dir),
        ("SEED", args.seed),
        ("NUM_TRAIN", args.num_train),
        ("NUM_VAL", args.num_val),
    ):
        if value is not None:
            synth[key] = value
    cfg.freeze()
    return cfg


def synth_config(cfg: CfgNode, split: str) -> SynthConfig:
    """The generator settings of one split from `cfg.DATASETS.SYNTH`."""
    s = cfg.DATASETS.SYNTH
    return SynthConfig(
        num_images=s.NUM_TRAIN if split == "train" else s.NUM_VAL,
        image_size=s.IMAGE_SIZE,
        text_height_range=tuple(s.TEXT_HEIGHT_RANGE),
        words_per_image=tuple(s.WORDS_PER_IMAGE),
        seed=s.SEED,
        fonts_dir=os.path.expanduser(s.FONTS_DIR),
        geometry_probs=tuple(s.GEOMETRY_PROBS),
    )


def main(argv: Optional[List[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    cfg = setup_cfg(args)
    for split in args.splits:
        synth = synth_config(cfg, split)
        split_dir = synthetic_split_dir(args.output, split)
        if not args.force and split_is_current(synth, args.output, split):
            print(f"{split_dir} is up to date ({synth.num_images} images); skipping it (--force regenerates)")
            continue
        start = time.perf_counter()
        generate_split(synth, args.output, split, num_workers=args.num_workers, progress=not args.no_progress)
        elapsed = time.perf_counter() - start
        print(f"Wrote {synth.num_images} images to {split_dir} in {elapsed:.1f} s")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    main()
