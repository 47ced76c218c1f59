#!/usr/bin/env python
"""
Peak resident memory of inference on one large image, on CPU. A child process reads the image through the test
mapper (which caps it at INPUT.MAX_SIZE_TEST, with a log line), runs the model once and exits; this process
prints the child's peak RSS (``resource.getrusage(RUSAGE_CHILDREN)``). Weights are random unless MODEL.WEIGHTS
is given; the score threshold is 0 so that the model returns its maximum number of words, the worst case for
post-processing (masks, polygons and recognition of TEST.DETECTIONS_PER_IMAGE words). Example:

    python tools/benchmark_memory.py --config-file configs/synth/text_spotter_R_18_FPN_synth.yaml \
        --width 4000 --height 3000 --limit-gb 4
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

GIB = 1024**3


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--image", default="", help="an image file to use instead of a generated one")
    parser.add_argument("--limit-gb", type=float, default=0.0, help="exit with status 1 above this peak (0: no limit)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return parser


def write_test_image(path: str, width: int, height: int) -> None:
    """A textured JPEG (noise plus dark bars, so that the detector has something to propose on)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    image = rng.integers(90, 170, size=(height, width, 3), dtype=np.uint8)
    for y in range(height // 20, height, height // 8):
        cv2.rectangle(image, (width // 10, y), (width * 9 // 10, y + height // 40), (20, 20, 20), -1)
    if not cv2.imwrite(path, image):
        raise OSError(f"could not write {path}")


def run_child(args: argparse.Namespace) -> None:
    """Build the model, map the image, run inference once; print one JSON line with what it saw."""
    import torch
    from detectron2.utils.logger import setup_logger

    from dld.data import TextDatasetMapper
    from dld.engine import build_model_from_config, load_config

    setup_logger(name="dld")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cfg = load_config(args.config_file, ["MODEL.DEVICE", "cpu", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", *args.opts])
    cfg.freeze()
    torch.manual_seed(0)
    model = build_model_from_config(cfg)  # MODEL.WEIGHTS, or random weights where it is empty
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    start = time.perf_counter()
    inputs = TextDatasetMapper(cfg, is_train=False)({"file_name": args.image, "image_id": 0})
    with torch.no_grad():
        instances = model([inputs])[0]["instances"]
    print(json.dumps({
        "input_size": [inputs["width"], inputs["height"]],
        "model_size": [int(inputs["image"].shape[2]), int(inputs["image"].shape[1])],
        "num_words": len(instances),
        "seconds": round(time.perf_counter() - start, 2),
        "rss_after_model_build": rss_model,
    }), flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    if args.child:
        run_child(args)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        image = args.image
        if not image:
            image = os.path.join(tmp, f"large_{args.width}x{args.height}.jpg")
            write_test_image(image, args.width, args.height)
        child = [sys.executable, os.path.abspath(__file__), "--config-file", args.config_file, "--image", image,
                 "--child", *args.opts]
        proc = subprocess.run(child, capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        print(proc.stdout, end="")
        print(f"inference failed with status {proc.returncode}")
        return proc.returncode
    *log, last = proc.stdout.strip().splitlines()
    print("\n".join(log))  # the child's log, with the line saying how the image was capped
    result = json.loads(last)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    print(f"input {result['input_size'][0]}x{result['input_size'][1]} -> model input "
          f"{result['model_size'][0]}x{result['model_size'][1]}, {result['num_words']} words, "
          f"{result['seconds']} s")
    print(f"RSS after building the model: {result['rss_after_model_build'] / GIB:.2f} GiB "
          f"({result['rss_after_model_build'] // 2**20} MiB)")
    print(f"peak RSS: {peak / GIB:.2f} GiB ({peak // 2**20} MiB)")
    if args.limit_gb and peak > args.limit_gb * GIB:
        print(f"above the limit of {args.limit_gb} GiB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
