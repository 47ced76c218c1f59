#!/usr/bin/env python
"""
Run a trained spotter on an image or a folder of images and write PNGs with the words drawn, plus a JSON
of the words. Example:

    python tools/demo.py --config-file configs/synth/text_spotter_R_18_FPN_synth.yaml \
        --input datasets/synth_text/val/images --output output/demo \
        --opts MODEL.WEIGHTS output/synth/text_spotter_R_18/model_final.pth
"""
import argparse
import glob
import json
import os

import tqdm
from detectron2.config import get_cfg
from detectron2.engine import DefaultPredictor

from dld import add_dld_config
from dld.data import read_image_checked
from dld.utils import TextVisualizer

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff")


def setup_cfg(args):
    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = args.confidence_threshold
    cfg.freeze()
    return cfg


def list_images(path: str):
    if os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, "*")) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise FileNotFoundError(f"no image ({', '.join(IMAGE_EXTENSIONS)}) in {path}")
        return files
    if not os.path.isfile(path):
        raise FileNotFoundError(f"input {path} does not exist")
    return [path]


def get_parser():
    parser = argparse.ArgumentParser(description="DLD text spotter demo")
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--input", required=True, help="an image or a folder of images")
    parser.add_argument("--output", required=True, help="folder for the drawn PNGs and words.json")
    parser.add_argument("--confidence-threshold", type=float, default=0.5)
    parser.add_argument("--max-images", type=int, default=0, help="stop after this many images (0: all)")
    parser.add_argument("--opts", default=[], nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return parser


def main(args) -> None:
    cfg = setup_cfg(args)
    predictor = DefaultPredictor(cfg)
    files = list_images(args.input)
    if args.max_images > 0:
        files = files[: args.max_images]
    os.makedirs(args.output, exist_ok=True)
    words = {}
    for path in tqdm.tqdm(files, desc="demo"):
        image = read_image_checked(path, "BGR")
        instances = predictor(image)["instances"].to("cpu")
        vis = TextVisualizer(image[:, :, ::-1]).draw_instance_predictions(instances)
        out_path = os.path.join(args.output, os.path.splitext(os.path.basename(path))[0] + ".png")
        vis.save(out_path)
        words[os.path.basename(path)] = [
            {"polygon": p.round(1).tolist(), "text": t, "score": round(float(s), 4), "text_score": round(float(ts), 4)}
            for p, t, s, ts in zip(instances.pred_polygons, instances.pred_texts, instances.scores, instances.text_scores)
        ]
    with open(os.path.join(args.output, "words.json"), "w") as f:
        json.dump(words, f, indent=1)
    print(f"wrote {len(files)} PNGs and words.json to {args.output}")


if __name__ == "__main__":
    main(get_parser().parse_args())
