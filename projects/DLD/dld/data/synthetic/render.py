"""Rendering one image: its background, text-size class, and the words sampled, warped and placed on it."""
import math
import zlib
from typing import List, Sequence, Tuple

import cv2
import numpy as np
from shapely import affinity
from shapely.geometry import Polygon

from .backgrounds import _background
from .compose import _draw_word, _occlude
from .config import DONT_CARE, MAX_WORD_LENGTH, SynthConfig
from .fonts import find_fonts
from .geometry import _curve, _perspective, _rotate
from .patch import _render, _Word
from .words import _sample_text

_ASPECT_RATIOS = ((4, 3), (3, 4), (1, 1), (3, 2), (2, 3), (16, 9))
_GEOMETRIES = ("straight", "rotated", "perspective", "curved")
_DONT_CARE_PROB = 0.06  # some are dropped when they do not fit: ~5% of the words written
_WORD_TRIES = 4  # words sampled for one slot before giving up on it
_POSITION_TRIES = 12  # positions tried per sampled word
_FULL_AFTER_FAILED_SLOTS = 2  # consecutive slots that found no room: the image is full, stop sampling words


def _make_word(
    rng: np.random.Generator,
    fonts: Sequence[str],
    height: float,
    max_chars: int,
    dont_care: str,
    geometry_probs: Sequence[float],
) -> Tuple[_Word, bool]:
    """Sample, render and warp one word; `dont_care` is "", "tiny", "blurred" or "occluded"."""
    if dont_care == "tiny":
        height = rng.uniform(5, 9)
    text = _sample_text(rng, max_chars)
    font = fonts[rng.integers(len(fonts))]
    stroke = int(max(1, round(0.06 * height))) if (rng.random() < 0.1 and height >= 14) else 0
    word = _render(text, font, height, stroke)
    geometry = _GEOMETRIES[rng.choice(len(_GEOMETRIES), p=geometry_probs)]
    if geometry == "curved" and (len(text) < 4 or dont_care == "tiny"):
        geometry = "straight"
    if geometry == "rotated":
        angle = rng.uniform(5, 30) if rng.random() < 0.8 else rng.uniform(30, 60)
        word = _rotate(word, angle * rng.choice((-1, 1)))
    elif geometry == "perspective":
        word = _perspective(rng, word)
    elif geometry == "curved":
        word = _curve(rng, word)
    if dont_care == "blurred":
        sigma = 0.3 * word.height
        word.patch = cv2.GaussianBlur(word.patch, (0, 0), sigma)
    elif rng.random() < 0.3:  # mild defocus, less on small text whose thin strokes would fade
        word.patch = cv2.GaussianBlur(word.patch, (0, 0), rng.uniform(0.3, 0.8) * min(1.0, height / 24))
    if dont_care:
        word.text = DONT_CARE
    return word, stroke > 0


def _image_rng(cfg: SynthConfig, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, zlib.crc32(split.encode("utf-8")), index]))


def generate_image(cfg: SynthConfig, split: str, index: int) -> Tuple[np.ndarray, List[Tuple[np.ndarray, str]]]:
    """
    Render image `index` of `split`.

    Returns:
        image: uint8 RGB array [H, W, 3], the longer side `cfg.image_size`.
        words: (polygon, text) pairs; polygon is float64 [4, 2] (straight, rotated, perspective) or
            [14, 2] (curved), clockwise from the top-left corner of the reading direction; text is "###" for
            don't-care words.
    """
    rng = _image_rng(cfg, split, index)
    fonts = find_fonts(cfg.fonts_dir)
    aw, ah = _ASPECT_RATIOS[rng.integers(len(_ASPECT_RATIOS))]
    long_side = cfg.image_size
    w, h = (long_side, int(round(long_side * ah / aw))) if aw >= ah else (int(round(long_side * aw / ah)), long_side)
    img = _background(rng, h, w)

    lo, hi = cfg.text_height_range
    class_height = math.exp(rng.uniform(math.log(lo), math.log(hi))) * long_side
    num_words = int(rng.integers(cfg.words_per_image[0], cfg.words_per_image[1] + 1))

    words: List[Tuple[np.ndarray, str]] = []
    footprints: List[Polygon] = []
    failed_slots = 0
    for _ in range(num_words):
        if failed_slots >= _FULL_AFTER_FAILED_SLOTS:
            break
        failed_slots += 1
        dont_care = ""
        if rng.random() < _DONT_CARE_PROB:
            dont_care = ("tiny", "blurred", "occluded")[rng.integers(3)]
        height = class_height * rng.uniform(0.8, 1.2)
        margin = max(2.0, 0.2 * height)
        gap = max(2.0, (0.8 if dont_care == "blurred" else 0.25) * height)
        # Roughly 0.65 * height per character; big text gets short words.
        max_chars = int(min(MAX_WORD_LENGTH, max(2, (w - 2 * margin) / (0.65 * height))))
        for _ in range(_WORD_TRIES):
            word, outlined = _make_word(rng, fonts, height, max_chars, dont_care, cfg.geometry_probs)
            bx0, by0 = word.polygon.min(0)
            bx1, by1 = word.polygon.max(0)
            x_range = (math.ceil(margin - bx0), math.floor(w - margin - bx1))
            y_range = (math.ceil(margin - by0), math.floor(h - margin - by1))
            if x_range[0] > x_range[1] or y_range[0] > y_range[1]:
                max_chars = max(2, min(max_chars - 1, int(max_chars * (w - 2 * margin) / max(bx1 - bx0, 1))))
                continue
            footprint = Polygon(word.polygon).buffer(gap)
            for _ in range(_POSITION_TRIES):
                x = int(rng.integers(x_range[0], x_range[1] + 1))
                y = int(rng.integers(y_range[0], y_range[1] + 1))
                placed = affinity.translate(footprint, x, y)
                if not any(placed.intersects(other) for other in footprints):
                    break
            else:
                continue
            _draw_word(rng, img, word, x, y, outlined)
            polygon = word.polygon + (x, y)
            if dont_care == "occluded":
                _occlude(rng, img, polygon)
            footprints.append(placed)
            words.append((polygon, word.text))
            failed_slots = 0
            break

    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.7))
    img += rng.normal(0, rng.uniform(0, 6), img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), words
