#!/usr/bin/env python
"""
Run a trained spotter (plain or DLD) on images or a video: each picture drawn with its words and, in a corner,
the scale the network read it at and its GFLOPs; every image's words and cost appended to
<output>/words.jsonl as soon as it is done (one JSON object a line), so that an interrupted run keeps what it
did and --resume goes on from there. Examples:

    python tools/demo.py --config-file configs/synth/text_spotter_R_18_FPN_synth.yaml \\
        --input datasets/synth_text/val/images --output output/demo \\
        --opts MODEL.WEIGHTS output/synth/text_spotter_R_18/model_final.pth
    python tools/demo.py --config-file configs/synth/dld_R_18_FPN_synth_gamma0.1.yaml \\
        --input 'photos/*.jpg' scans/ receipt.png --output output/demo_dld --opts MODEL.WEIGHTS dld.pth
    python tools/demo.py --config-file ... --video-input street.mp4 --output output/demo_video --opts ...

--input takes files, folders (their images, not recursively) and glob patterns, several at once. A picture is
named after its whole file name (a.jpg -> a.jpg.png, a.png -> a.png.png; the same name from two folders gets
-2, -3, ...). An image that cannot be read is skipped with a one-line message and counted in the summary.
Config overrides go last, after --opts, as KEY VALUE pairs (tools/train_net.py takes the same pairs without
--opts).
"""
import argparse
import glob
import json
import logging
import os
import sys
from typing import IO, Dict, List, Optional, Sequence

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
WORDS_FILE = "words.jsonl"

logger = logging.getLogger("dld.demo")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", nargs="+", metavar="PATH", help="image files, folders and glob patterns")
    source.add_argument("--video-input", metavar="FILE", help="a video (anything OpenCV reads); writes <name>.mp4")
    parser.add_argument("--output", required=True, help="folder for the pictures (or the video) and words.jsonl")
    parser.add_argument("--confidence-threshold", type=float, default=0.5, help="minimum detection score")
    parser.add_argument("--max-images", type=int, default=0, help="stop after this many images or frames (0: all)")
    parser.add_argument("--resume", action="store_true", help=f"skip the images already in {WORDS_FILE}")
    parser.add_argument("--opts", default=[], nargs=argparse.REMAINDER, help="config overrides KEY VALUE ..., last")
    return parser


# ------------------------------------------------------------------------------------------ inputs
def list_images(patterns: Sequence[str]) -> List[str]:
    """Files, folders (their images) and glob patterns, in the order given, each file once."""
    files: List[str] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            found = sorted(f for f in glob.glob(os.path.join(glob.escape(pattern), "*"))
                           if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(f))
            if not found:
                raise FileNotFoundError(f"no image ({', '.join(IMAGE_EXTENSIONS)}) in the folder {pattern}")
        elif os.path.isfile(pattern):
            found = [pattern]
        else:
            found = sorted(f for f in glob.glob(pattern) if os.path.isfile(f))
            if not found:
                raise FileNotFoundError(f"input {pattern} does not exist (no file, folder or glob match)")
        files += [f for f in found if f not in files]
    return files


def output_names(files: Sequence[str]) -> List[str]:
    """One picture name per input, all distinct: the whole file name plus .png, then -2, -3, ... on a clash."""
    names, taken = [], set()
    for path in files:
        base = os.path.basename(path)
        name, k = f"{base}.png", 1
        while name in taken:
            k += 1
            name = f"{base}-{k}.png"
        taken.add(name)
        names.append(name)
    return names


def _done_files(words_path: str) -> set:
    """The inputs recorded in a words.jsonl (a last line cut by a crash is ignored)."""
    done = set()
    if os.path.isfile(words_path):
        with open(words_path) as f:
            for line in f:
                try:
                    done.add(json.loads(line)["file"])
                except (ValueError, KeyError, TypeError):
                    continue
    return done


# ------------------------------------------------------------------------------------------ drawing
def draw(image_bgr: np.ndarray, result) -> np.ndarray:
    """RGB picture of `result`'s words on the image, with its selected scale and GFLOPs in the top-left corner."""
    from dld.utils import TextVisualizer

    vis = TextVisualizer(image_bgr[:, :, ::-1])
    vis.draw_instance_predictions(result.instances)
    cost = f"scale {result.selected_scale:g}"
    if result.gflops is not None:
        cost += f", {result.gflops:.2f} GFLOPs"
    vis.draw_text(cost, (4, 4), font_size=max(vis._default_font_size, 9), color=(1.0, 0.9, 0.1),
                  horizontal_alignment="left")
    return vis.output.get_image()


def _append(f: IO[str], record: Dict) -> None:
    f.write(json.dumps(record) + "\n")
    f.flush()
    os.fsync(f.fileno())


def _describe(result) -> str:
    gflops = f", {result.gflops:.2f} GFLOPs" if result.gflops is not None else ""
    return f"{len(result.words)} words, {result.seconds:.2f} s, scale {result.selected_scale:g}{gflops}"


# ------------------------------------------------------------------------------------------ runs
def run_images(predictor, files: Sequence[str], output: str, resume: bool) -> Dict[str, int]:
    """Each image drawn to <output>/<name>.png and its record appended to words.jsonl; returns the counts."""
    import cv2

    from dld.data import read_image_checked

    words_path = os.path.join(output, WORDS_FILE)
    done = _done_files(words_path) if resume else set()
    counts = {"written": 0, "skipped_unreadable": 0, "already_done": 0}
    with open(words_path, "a" if resume else "w") as f:
        for i, (path, name) in enumerate(zip(files, output_names(files)), start=1):
            if path in done:
                counts["already_done"] += 1
                continue
            try:
                image = read_image_checked(path, "BGR")
            except OSError as e:
                counts["skipped_unreadable"] += 1
                logger.warning(f"[{i}/{len(files)}] skipped: {e}")
                continue
            result = predictor(image)
            if not cv2.imwrite(os.path.join(output, name), draw(image, result)[:, :, ::-1]):
                raise OSError(f"could not write {os.path.join(output, name)}")
            _append(f, {"file": path, "output": name, **result.to_dict()})
            counts["written"] += 1
            logger.info(f"[{i}/{len(files)}] {path}: {_describe(result)}")
    return counts


def open_video(path: str):
    import cv2

    if not os.path.isfile(path):
        raise FileNotFoundError(f"video {path} does not exist")
    video = cv2.VideoCapture(path)
    if not video.isOpened():
        raise OSError(f"OpenCV cannot open the video {path}")
    return video


def run_video(predictor, video, path: str, output: str, max_frames: int) -> Dict[str, int]:
    """Every frame drawn into <output>/<name>.mp4 (mp4v) and its record appended to words.jsonl."""
    import cv2

    fps = video.get(cv2.CAP_PROP_FPS) or 25.0
    width, height = int(video.get(cv2.CAP_PROP_FRAME_WIDTH)), int(video.get(cv2.CAP_PROP_FRAME_HEIGHT))
    name = os.path.splitext(os.path.basename(path))[0] + ".mp4"
    writer = cv2.VideoWriter(os.path.join(output, name), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    frames = 0
    try:
        with open(os.path.join(output, WORDS_FILE), "w") as f:
            while max_frames <= 0 or frames < max_frames:
                ok, frame = video.read()
                if not ok:
                    break
                result = predictor(frame)
                writer.write(np.ascontiguousarray(draw(frame, result)[:, :, ::-1]))
                _append(f, {"file": path, "frame": frames, "output": name, **result.to_dict()})
                logger.info(f"frame {frames}: {_describe(result)}")
                frames += 1
    finally:
        writer.release()
        video.release()
    return {"frames": frames}


def main(argv: Optional[List[str]] = None) -> Dict[str, int]:
    parser = get_parser()
    args = parser.parse_args(argv)
    # Everything the user gave is checked before the model is built (seconds).
    try:
        if not os.path.isfile(args.config_file):
            raise FileNotFoundError(f"config file {args.config_file} does not exist")
        video = open_video(args.video_input) if args.video_input else None
        files = list_images(args.input) if args.input else []
    except OSError as e:
        parser.error(str(e))
    if args.max_images > 0:
        files = files[: args.max_images]

    from dld.engine import TextSpotterPredictor, load_config

    cfg = load_config(args.config_file, args.opts)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = args.confidence_threshold
    cfg.freeze()
    try:
        predictor = TextSpotterPredictor(cfg)
    except FileNotFoundError as e:
        parser.error(str(e))
    os.makedirs(args.output, exist_ok=True)

    if video is not None:
        counts = run_video(predictor, video, args.video_input, args.output, args.max_images)
        print(f"wrote {counts['frames']} frames and {WORDS_FILE} to {args.output}")
        return counts
    counts = run_images(predictor, files, args.output, args.resume)
    summary = f"wrote {counts['written']} pictures and {WORDS_FILE} to {args.output}"
    if counts["already_done"]:
        summary += f"; {counts['already_done']} images already done (--resume)"
    if counts["skipped_unreadable"]:
        summary += f"; skipped {counts['skipped_unreadable']} unreadable images (see the warnings above)"
    print(summary)
    return counts


if __name__ == "__main__":
    from detectron2.utils.logger import setup_logger

    setup_logger(name="dld")
    main(sys.argv[1:])
