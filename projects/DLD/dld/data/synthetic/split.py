"""Writing a split to disk with one or more worker processes, and its meta.json."""
import dataclasses
import json
import logging
import multiprocessing as mp
import os
import shutil
from typing import Any, Dict, Tuple

import cv2
from PIL import Image
from tqdm import tqdm

from ..formats import write_icdar2015_gt, write_polygon_gt
from .config import GENERATOR_VERSION, JPEG_QUALITY, SynthConfig
from .fonts import find_fonts
from .geometry import _min_area_quad
from .render import generate_image

logger = logging.getLogger(__package__)  # the package's logger, as before the split into modules


def synthetic_split_dir(root: str, split: str) -> str:
    """Directory of one split: ``<root>/synth_text/<split>``."""
    return os.path.join(root, "synth_text", split)


def _write_image(job: Tuple[SynthConfig, str, str, int]) -> int:
    cfg, split_dir, split, index = job
    image, words = generate_image(cfg, split, index)
    Image.fromarray(image).save(os.path.join(split_dir, "images", f"img_{index}.jpg"), quality=JPEG_QUALITY)
    h, w = image.shape[:2]
    quads = [(p if len(p) == 4 else _min_area_quad(p, w, h), t) for p, t in words]
    write_icdar2015_gt(os.path.join(split_dir, "gts_ic15", f"gt_img_{index}.txt"), quads)
    write_polygon_gt(os.path.join(split_dir, "gts_polygon", f"poly_gt_img{index}.txt"), words)
    return len(words)


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core already


def split_meta(cfg: SynthConfig, split: str) -> Dict[str, Any]:
    """The meta.json content that a split generated with `cfg` has."""
    return {
        "generator_version": GENERATOR_VERSION,
        "split": split,
        "config": dataclasses.asdict(cfg),
        "fonts": [os.path.basename(f) for f in find_fonts(cfg.fonts_dir)],
        "jpeg_quality": JPEG_QUALITY,
    }


def split_is_current(cfg: SynthConfig, root: str, split: str) -> bool:
    """Whether `root` holds `split` fully generated with exactly this config and generator version."""
    path = os.path.join(synthetic_split_dir(root, split), "meta.json")
    try:
        with open(path, "r", encoding="utf-8") as f:
            existing = json.load(f)
    except (OSError, ValueError):
        return False
    return existing == json.loads(json.dumps(split_meta(cfg, split)))


def generate_split(cfg: SynthConfig, root: str, split: str, num_workers: int = 2, progress: bool = True) -> str:
    """
    Render `cfg.num_images` images of `split` under ``<root>/synth_text/<split>``, replacing what was there.

    meta.json is written last, so a split without it is incomplete. Returns the split directory.
    """
    split_dir = synthetic_split_dir(root, split)
    meta_path = os.path.join(split_dir, "meta.json")
    if os.path.exists(meta_path):
        os.remove(meta_path)
    for sub in ("images", "gts_ic15", "gts_polygon"):
        shutil.rmtree(os.path.join(split_dir, sub), ignore_errors=True)
        os.makedirs(os.path.join(split_dir, sub))
    find_fonts(cfg.fonts_dir)  # fail early, before starting workers

    jobs = [(cfg, split_dir, split, i) for i in range(1, cfg.num_images + 1)]
    bar = tqdm(total=len(jobs), desc=f"synth_text/{split}", unit="img", disable=not progress)
    num_words = 0
    if num_workers <= 1:
        _init_worker()
        for job in jobs:
            num_words += _write_image(job)
            bar.update()
    else:
        with mp.Pool(num_workers, initializer=_init_worker) as pool:
            for n in pool.imap_unordered(_write_image, jobs, chunksize=8):
                num_words += n
                bar.update()
    bar.close()

    with open(meta_path, "w", encoding="utf-8") as f:
        json.dump(split_meta(cfg, split), f, indent=2)
        f.write("\n")
    logger.info("Wrote %d images with %d words to %s", cfg.num_images, num_words, split_dir)
    return split_dir
