"""
The embedded synthetic scene-text dataset, the project's default training and evaluation data.

Each image gets one text-size class: the text height, as a fraction of the image's longer side, is drawn
log-uniformly from ``SynthConfig.text_height_range`` per image and jittered by ±20% per word. Text size therefore
varies strongly between images and little within one, which is what a per-image resolution choice exploits.

Words are straight, rotated, perspective-warped or curved, never overlap and lie inside the image; about 5% are
unreadable (tiny, blurred or occluded) and transcribed ``###``. Every image is generated from its own RNG seeded
with ``(seed, split, index)``, so the output is byte-identical across runs and independent of the worker count.

Disk layout of a split (written by :func:`generate_split`, read by :func:`load_synthetic_split`)::

    <root>/synth_text/<split>/images/img_<i>.jpg                i = 1 .. num_images
    <root>/synth_text/<split>/gts_ic15/gt_img_<i>.txt           ICDAR 2015 quads (curved words: min-area rectangle)
    <root>/synth_text/<split>/gts_polygon/poly_gt_img<i>.txt    polygons, 4 or 14 points
    <root>/synth_text/<split>/meta.json                         the config used; written last
"""
import dataclasses
import functools
import json
import logging
import math
import multiprocessing as mp
import os
import shutil
import string
import zlib
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from shapely import affinity
from shapely.geometry import Polygon
from tqdm import tqdm

from .formats import parse_polygon_gt, write_icdar2015_gt, write_polygon_gt

__all__ = [
    "SynthConfig",
    "find_fonts",
    "generate_image",
    "generate_split",
    "load_synthetic_split",
    "split_is_current",
    "split_meta",
    "synthetic_split_dir",
]

logger = logging.getLogger(__name__)

# Bump when the generator's output changes, so that existing splits are regenerated.
GENERATOR_VERSION = 1
JPEG_QUALITY = 92
DONT_CARE = "###"
PRINTABLE_ASCII = frozenset(string.printable[:95])
MAX_WORD_LENGTH = 24
CURVE_POINTS = 7  # points per long edge of a curved word's polygon (14 in all)

_ASPECT_RATIOS = ((4, 3), (3, 4), (1, 1), (3, 2), (2, 3), (16, 9))
_GEOMETRIES = ("straight", "rotated", "perspective", "curved")
_GEOMETRY_PROBS = (0.45, 0.25, 0.15, 0.15)
_DONT_CARE_PROB = 0.06  # some are dropped when they do not fit: ~5% of the words written
_WORD_TRIES = 4  # words sampled for one slot before giving up on it
_POSITION_TRIES = 12  # positions tried per sampled word
_INK_THRESHOLD = 0.25  # mask coverage counted as ink when fitting a polygon
_MIN_CONTRAST = 0.35  # minimum luma difference (0..1) between text and the background under it
_MATPLOTLIB_FONT_PREFIXES = ("DejaVuSans-", "DejaVuSans.", "DejaVuSerif", "DejaVuSansMono", "STIXGeneral")


@dataclass(frozen=True)
class SynthConfig:
    """
    Parameters of the synthetic dataset.

    Attributes:
        num_images: images in the split.
        image_size: longer image side in pixels; the aspect ratio is drawn per image (4:3, 3:4, 1:1, 3:2, 2:3, 16:9).
        text_height_range: per-image text height as a fraction of the longer side, drawn log-uniformly.
        words_per_image: inclusive range of words attempted per image.
        seed: non-negative base seed.
        fonts_dir: extra directory whose .ttf/.otf fonts are used besides matplotlib's.
    """

    num_images: int
    image_size: int = 384
    text_height_range: Tuple[float, float] = (0.035, 0.2)
    words_per_image: Tuple[int, int] = (1, 6)
    seed: int = 0
    fonts_dir: str = ""

    def __post_init__(self):
        # Configs read from YAML give lists; keep the dataclass hashable and its JSON stable.
        object.__setattr__(self, "text_height_range", tuple(float(v) for v in self.text_height_range))
        object.__setattr__(self, "words_per_image", tuple(int(v) for v in self.words_per_image))
        lo, hi = self.text_height_range
        if not (len(self.text_height_range) == 2 and 0 < lo <= hi < 1):
            raise ValueError(f"text_height_range must be (lo, hi) with 0 < lo <= hi < 1, got {self.text_height_range}")
        wlo, whi = self.words_per_image
        if not (len(self.words_per_image) == 2 and 0 <= wlo <= whi):
            raise ValueError(f"words_per_image must be (lo, hi) with 0 <= lo <= hi, got {self.words_per_image}")
        if self.num_images < 0 or self.image_size < 64 or self.seed < 0:
            raise ValueError(f"need num_images >= 0, image_size >= 64 and seed >= 0, got {self}")


# ---------------------------------------------------------------------------------------------- fonts and words
def _covers_printable_ascii(path: str) -> bool:
    from fontTools.ttLib import TTFont  # ships with matplotlib

    try:
        with TTFont(path, lazy=True, fontNumber=0) as font:
            cmap = font.getBestCmap() or {}
    except Exception as e:  # a broken font file should not stop the generator
        logger.warning("Cannot read font %s (%s); skipping it", path, e)
        return False
    return all(ord(c) in cmap for c in PRINTABLE_ASCII if c != " ")


@functools.lru_cache(maxsize=None)
def find_fonts(fonts_dir: str = "") -> Tuple[str, ...]:
    """
    The fonts the generator draws from: matplotlib's DejaVu and STIXGeneral text fonts plus every .ttf/.otf in
    `fonts_dir`, keeping only fonts with glyphs for all printable ASCII characters. Sorted, so the choice of a
    font by index is reproducible.
    """
    import matplotlib

    candidates = []
    mpl_dir = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    if os.path.isdir(mpl_dir):
        candidates += [
            os.path.join(mpl_dir, f)
            for f in os.listdir(mpl_dir)
            if f.endswith(".ttf") and f.startswith(_MATPLOTLIB_FONT_PREFIXES)
        ]
    if fonts_dir:
        if not os.path.isdir(fonts_dir):
            raise FileNotFoundError(f"fonts_dir {fonts_dir!r} is not a directory")
        for dirpath, _, files in os.walk(fonts_dir):
            candidates += [os.path.join(dirpath, f) for f in files if f.lower().endswith((".ttf", ".otf"))]
    fonts = sorted(f for f in set(candidates) if _covers_printable_ascii(f))
    if not fonts:
        raise RuntimeError(
            f"No usable font found (looked in {mpl_dir!r}" + (f" and {fonts_dir!r}" if fonts_dir else "") + "). "
            "Install matplotlib with its bundled fonts or pass a directory of .ttf/.otf fonts as fonts_dir."
        )
    return tuple(fonts)


@functools.lru_cache(maxsize=512)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # The basic layout engine gives the same glyph positions with or without libraqm installed.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


@functools.lru_cache(maxsize=None)
def _font_height_ratio(path: str) -> float:
    """Ink height of "Hg" (cap height plus descender) per pixel of font size: the size-class unit."""
    left, top, right, bottom = _load_font(path, 100).getbbox("Hg")
    return max(bottom - top, 1) / 100.0


@functools.lru_cache(maxsize=1)
def _vocabulary() -> Tuple[np.ndarray, np.ndarray]:
    """Words from wordfreq's top-20000 English list (letters and apostrophes only) and their lengths."""
    from wordfreq import top_n_list

    words = [
        w
        for w in top_n_list("en", 20000)
        if 2 <= len(w) <= MAX_WORD_LENGTH - 2 and all(c in PRINTABLE_ASCII for c in w) and w.replace("'", "").isalpha()
    ]
    return np.array(words), np.array([len(w) for w in words])


def _sample_number(rng: np.random.Generator) -> str:
    kind = rng.integers(6)
    if kind == 0:
        return f"${rng.integers(1, 1000)}.{rng.integers(100):02d}"
    if kind == 1:
        return str(rng.integers(1900, 2031))
    if kind == 2:
        return f"{rng.integers(200, 1000)}-{rng.integers(10000):04d}"
    if kind == 3:
        return f"{rng.integers(1, 100)}%"
    if kind == 4:
        return f"{rng.integers(1, 13)}:{rng.integers(60):02d}"
    return str(rng.integers(0, 10 ** rng.integers(1, 5)))


_PUNCT_TEMPLATES = ("{}!", "({})", '"{}"', "{},", "{}.", "{}?", "{}:", "#{}", "'{}'", "{};", "{}-", "@{}", "*{}*")


def _sample_text(rng: np.random.Generator, max_chars: int) -> str:
    """A transcription of at most `max_chars` (≥ 2) printable ASCII characters."""
    words, lengths = _vocabulary()
    kind = rng.random()
    if kind < 0.08:
        text = _sample_number(rng)
        if len(text) <= max_chars:
            return text
    wrap = kind > 0.88 and max_chars >= 4
    word_max = max_chars - 2 if wrap else max_chars
    candidates = np.flatnonzero(lengths <= max(word_max, 2))
    word = str(words[candidates[rng.integers(len(candidates))]])
    case = rng.random()
    if case < 0.2:
        word = word.upper()
    elif case < 0.45:
        word = word[0].upper() + word[1:]
    if wrap:
        word = _PUNCT_TEMPLATES[rng.integers(len(_PUNCT_TEMPLATES))].format(word)
    return word[:max_chars]


# ---------------------------------------------------------------------------------------------- colours
def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _colour_with_luma(rng: np.random.Generator, target: float) -> np.ndarray:
    """A random colour with luma `target` (0..255): a random hue blended towards black or white."""
    c = rng.uniform(0, 255, 3)
    if rng.random() < 0.4:  # many real signs are near-grey
        c = np.full(3, c.mean()) + rng.normal(0, 15, 3)
    c = np.clip(c, 0, 255)
    y = float(_luma(c))
    if target >= y:
        c = c + (255 - c) * ((target - y) / max(255 - y, 1e-3))
    else:
        c = c * (target / max(y, 1e-3))
    return np.clip(c, 0, 255).astype(np.float32)


def _contrasting_luma(rng: np.random.Generator, lo: float, hi: float) -> Optional[float]:
    """A luma at least _MIN_CONTRAST away from every background luma in [lo, hi], or None if there is none."""
    gap = _MIN_CONTRAST * 255
    intervals = [(0.0, lo - gap), (hi + gap, 255.0)]
    intervals = [(a, b) for a, b in intervals if b >= a]
    if not intervals:
        return None
    widths = np.array([b - a + 1.0 for a, b in intervals])
    a, b = intervals[rng.choice(len(intervals), p=widths / widths.sum())]
    return float(rng.uniform(a, b))


# ---------------------------------------------------------------------------------------------- backgrounds
def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A float32 HxWx3 background: gradient, noise or texture, then non-text clutter."""
    c1, c2 = _random_colour(rng), _random_colour(rng)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.choice(6, p=(0.1, 0.2, 0.15, 0.25, 0.15, 0.15))
    if kind == 0:  # flat
        t = np.zeros((h, w), np.float32)
    elif kind == 1:  # linear gradient
        a = rng.uniform(0, 2 * math.pi)
        t = xs * math.cos(a) + ys * math.sin(a)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    elif kind == 2:  # radial gradient
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
        t = t / max(float(t.max()), 1.0)
    elif kind == 3:  # low-frequency noise
        grid = rng.random((int(rng.integers(2, 9)), int(rng.integers(2, 9))), dtype=np.float32)
        t = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    else:  # stripes or checker, at reduced contrast
        a = rng.uniform(0, math.pi)
        u, v = xs * math.cos(a) + ys * math.sin(a), -xs * math.sin(a) + ys * math.cos(a)
        period = rng.uniform(8, 64)
        if kind == 4:
            t = 0.5 + 0.5 * np.sin(u * (2 * math.pi / period))
            if rng.random() < 0.5:
                t = (t > 0.5).astype(np.float32)
        else:
            t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
        c2 = c1 + (c2 - c1) * rng.uniform(0.15, 0.5)
    img = c1 + (c2 - c1) * np.clip(t, 0, 1)[..., None]
    if rng.random() < 0.4:  # a second, coloured low-frequency layer
        grid = rng.uniform(-40, 40, (int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3)).astype(np.float32)
        img = img + cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255).astype(np.uint8)
    _draw_clutter(rng, img)
    return img.astype(np.float32)


def _draw_clutter(rng: np.random.Generator, img: np.ndarray) -> None:
    """Non-text distractors in place: lines, circles, ellipses, rectangles and zigzags."""
    h, w = img.shape[:2]
    s = max(h, w)
    for _ in range(int(rng.choice(13, p=np.r_[np.full(4, 0.15), np.full(9, 0.4 / 9)]))):
        colour = tuple(float(c) for c in rng.integers(0, 256, 3))
        thickness = int(rng.integers(1, 6)) if rng.random() < 0.6 else -1
        kind = rng.integers(5)
        p = (int(rng.integers(w)), int(rng.integers(h)))
        if kind == 0:
            q = (int(rng.integers(w)), int(rng.integers(h)))
            cv2.line(img, p, q, colour, max(thickness, 1), cv2.LINE_AA)
        elif kind == 1:
            cv2.circle(img, p, int(rng.uniform(0.02, 0.2) * s), colour, thickness, cv2.LINE_AA)
        elif kind == 2:
            axes = (int(rng.uniform(0.02, 0.25) * s), int(rng.uniform(0.02, 0.15) * s))
            cv2.ellipse(img, p, axes, float(rng.uniform(0, 180)), 0, 360, colour, thickness, cv2.LINE_AA)
        elif kind == 3:
            q = (p[0] + int(rng.uniform(-0.3, 0.3) * s), p[1] + int(rng.uniform(-0.3, 0.3) * s))
            cv2.rectangle(img, p, q, colour, thickness, cv2.LINE_AA)
        else:
            pts = np.cumsum(rng.uniform(-0.1, 0.1, (int(rng.integers(3, 8)), 2)) * s, axis=0) + p
            cv2.polylines(img, [pts.astype(np.int32)], False, colour, max(thickness, 1), cv2.LINE_AA)


# ---------------------------------------------------------------------------------------------- word patches
@dataclass
class _Word:
    """A rendered word: coverage masks (channel 0 fill, 1 fill plus outline) and its polygon, in patch pixels."""

    patch: np.ndarray  # float32 [h, w, 2] in 0..1
    polygon: np.ndarray  # float64 [k, 2], clockwise from the top-left of the reading direction
    text: str
    height: float


def _render(text: str, font_path: str, height: float, stroke: int) -> _Word:
    """Draw `text` so that "Hg" would be `height` pixels tall; the polygon is the tight box of the drawn ink."""
    size = max(4, int(round(height / _font_height_ratio(font_path))))
    font = _load_font(font_path, size)
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    pad = 2 + stroke
    canvas_size = (right - left + 2 * pad, bottom - top + 2 * pad)
    origin = (pad - left, pad - top)
    outline = Image.new("L", canvas_size)
    ImageDraw.Draw(outline).text(origin, text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    union = np.asarray(outline, np.float32) / 255.0
    if stroke:
        fill_img = Image.new("L", canvas_size)
        ImageDraw.Draw(fill_img).text(origin, text, font=font, fill=255)
        fill = np.asarray(fill_img, np.float32) / 255.0
    else:
        fill = union
    ink = union > _INK_THRESHOLD
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    if len(rows) == 0:
        x0, y0, x1, y1 = pad, pad, canvas_size[0] - pad, canvas_size[1] - pad
    else:
        x0, x1, y0, y1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
    polygon = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
    return _Word(np.stack([fill, union], -1), polygon, text, float(y1 - y0))


def _apply_homography(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), matrix).reshape(-1, 2)


def _warp(word: _Word, matrix: np.ndarray) -> _Word:
    """Warp a word by a 3x3 affine or projective matrix onto a canvas just large enough to hold it."""
    h, w = word.patch.shape[:2]
    corners = _apply_homography(np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64), matrix)
    lo = np.floor(corners.min(0)) - 1
    size = np.ceil(corners.max(0) - lo).astype(int) + 2
    shift = np.array([[1, 0, -lo[0]], [0, 1, -lo[1]], [0, 0, 1]], np.float64)
    matrix = shift @ matrix
    dsize = (int(size[0]), int(size[1]))
    if np.allclose(matrix[2], [0, 0, 1]):
        patch = cv2.warpAffine(word.patch, matrix[:2], dsize, flags=cv2.INTER_LINEAR)
    else:
        patch = cv2.warpPerspective(word.patch, matrix, dsize, flags=cv2.INTER_LINEAR)
    # OpenCV samples at pixel centres (pixel i at coordinate i); polygons put pixel i on [i, i + 1].
    polygon = _apply_homography(word.polygon - 0.5, matrix) + 0.5
    return _Word(patch, polygon, word.text, word.height)


def _rotate(word: _Word, angle: float) -> _Word:
    """Rotate counter-clockwise (as displayed) by `angle` degrees."""
    m = np.eye(3)
    m[:2] = cv2.getRotationMatrix2D((0.0, 0.0), angle, 1.0)
    return _warp(word, m)


def _perspective(rng: np.random.Generator, word: _Word) -> _Word:
    """A random homography of the word box: keystone, shear, foreshortening and corner jitter."""
    (x0, y0), (x1, _), (_, y1) = word.polygon[0], word.polygon[1], word.polygon[2]
    w, h = x1 - x0, y1 - y0
    half_left, half_right = h / 2 * rng.uniform(0.7, 1.3), h / 2 * rng.uniform(0.7, 1.3)
    width = w * rng.uniform(0.75, 1.0)
    shear = h * rng.uniform(-0.35, 0.35)
    dst = np.array(
        [[shear, -half_left], [width + shear, -half_right], [width - shear, half_right], [-shear, half_left]]
    ) + rng.normal(0, 0.05 * h, (4, 2))
    matrix = cv2.getPerspectiveTransform(word.polygon.astype(np.float32), dst.astype(np.float32)).astype(np.float64)
    word = _warp(word, matrix)
    return _rotate(word, rng.uniform(-20, 20)) if rng.random() < 0.5 else word


def _curve(rng: np.random.Generator, word: _Word) -> _Word:
    """Bend the word along a circular arc (text on top of a circle, or hanging under one)."""
    (x0, y0), (x1, _), (_, y1) = word.polygon[0], word.polygon[1], word.polygon[2]
    ink_w, ink_h = x1 - x0, y1 - y0
    radius = max(ink_w / rng.uniform(0.6, 2.0), 1.6 * ink_h)
    sign = 1.0 if rng.random() < 0.5 else -1.0  # +1: centre below the text, -1: centre above
    xm, yc = (x0 + x1) / 2, (y0 + y1) / 2

    def forward(x, y):
        phi = (x - xm) / radius
        r = radius + sign * (yc - y)
        return r * np.sin(phi), -sign * r * np.cos(phi)

    h, w = word.patch.shape[:2]
    border = np.concatenate(
        [np.stack([np.linspace(0, w, 64), np.full(64, yy)], 1) for yy in (0, h)]
        + [np.stack([np.full(8, xx), np.linspace(0, h, 8)], 1) for xx in (0, w)]
    )
    bu, bv = forward(border[:, 0], border[:, 1])
    lo_u, lo_v = math.floor(bu.min()) - 1, math.floor(bv.min()) - 1
    out_w, out_h = int(math.ceil(bu.max() - lo_u)) + 2, int(math.ceil(bv.max() - lo_v)) + 2
    gu, gv = np.meshgrid(np.arange(out_w, dtype=np.float32) + lo_u, np.arange(out_h, dtype=np.float32) + lo_v)
    r = np.sqrt(gu**2 + gv**2)
    phi = np.arctan2(gu, -sign * gv)
    map_x = (xm + phi * radius).astype(np.float32)
    map_y = (yc - sign * (r - radius)).astype(np.float32)
    patch = cv2.remap(word.patch, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    # The outer edge is an arc bulging outwards; push its points out so that the chords between them contain it.
    step = (ink_w / radius) / (CURVE_POINTS - 1)
    y_out = y0 if sign > 0 else y1
    r_out = (radius + sign * (yc - y_out)) / math.cos(step / 2)
    y_out = yc - sign * (r_out - radius)
    top_y, bottom_y = (y_out, y1) if sign > 0 else (y0, y_out)
    xs = np.linspace(x0, x1, CURVE_POINTS)
    tu, tv = forward(xs - 0.5, np.full_like(xs, top_y - 0.5))  # half-pixel shift as in _warp
    bu, bv = forward(xs[::-1] - 0.5, np.full_like(xs, bottom_y - 0.5))
    polygon = np.stack([np.r_[tu, bu] - lo_u, np.r_[tv, bv] - lo_v], 1) + 0.5
    word = _Word(patch, polygon, word.text, word.height)
    return _rotate(word, rng.uniform(-20, 20)) if rng.random() < 0.3 else word


def _make_word(rng: np.random.Generator, fonts: Sequence[str], height: float, max_chars: int, dont_care: str):
    """Sample, render and warp one word; `dont_care` is "", "tiny", "blurred" or "occluded"."""
    if dont_care == "tiny":
        height = rng.uniform(5, 9)
    text = _sample_text(rng, max_chars)
    font = fonts[rng.integers(len(fonts))]
    stroke = int(max(1, round(0.06 * height))) if (rng.random() < 0.1 and height >= 14) else 0
    word = _render(text, font, height, stroke)
    geometry = _GEOMETRIES[rng.choice(len(_GEOMETRIES), p=_GEOMETRY_PROBS)]
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


# ---------------------------------------------------------------------------------------------- composition
def _composite(img: np.ndarray, mask: np.ndarray, colour: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend `colour` into `img` through the 2-D `mask` placed at (x, y); clips at the image border."""
    h, w = img.shape[:2]
    mh, mw = mask.shape[:2]
    ix0, iy0, ix1, iy1 = max(x, 0), max(y, 0), min(x + mw, w), min(y + mh, h)
    if ix0 >= ix1 or iy0 >= iy1:
        return
    a = mask[iy0 - y : iy1 - y, ix0 - x : ix1 - x, None]
    region = img[iy0:iy1, ix0:ix1]
    region *= 1 - a
    region += a * colour


def _edges(polygon: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Top edge (left to right) and bottom edge (left to right) of a 2n-point word polygon."""
    n = len(polygon) // 2
    return polygon[:n], polygon[n:][::-1]


def _occlude(rng: np.random.Generator, img: np.ndarray, polygon: np.ndarray) -> None:
    """Paint over a random 40-70% stretch of the word along its reading direction."""
    top, bottom = _edges(polygon)
    length = rng.uniform(0.4, 0.7)
    start = rng.uniform(0, 1 - length)
    ts = np.linspace(start, start + length, 8)
    idx = np.linspace(0, 1, len(top))
    top_pts = np.stack([np.interp(ts, idx, top[:, k]) for k in range(2)], 1)
    bottom_pts = np.stack([np.interp(ts, idx, bottom[:, k]) for k in range(2)], 1)
    # Grow the occluder a little across the text so that it really hides the strokes it covers.
    centre = (top_pts + bottom_pts) / 2
    pts = np.concatenate([centre + (top_pts - centre) * 1.1, (centre + (bottom_pts - centre) * 1.1)[::-1]])
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round((pts - 0.5) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    _composite(img, mask.astype(np.float32) / 255.0, _random_colour(rng), 0, 0)


def _draw_word(rng: np.random.Generator, img: np.ndarray, word: _Word, x: int, y: int, outlined: bool) -> None:
    """Composite a placed word with a colour that contrasts with the background under it."""
    h, w = img.shape[:2]
    fill, union = word.patch[..., 0], word.patch[..., 1]
    polygon = word.polygon + (x, y)
    # Legibility depends on the whole area around the strokes: take the background inside the word polygon.
    x0, y0 = np.floor(polygon.min(0)).astype(int)
    x1, y1 = np.ceil(polygon.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(inside, [np.round(polygon - (x0, y0)).astype(np.int32)], 1)
    bg = _luma(img[y0:y1, x0:x1][inside.astype(bool)])
    lo, hi = np.percentile(bg, (5, 95)) if bg.size else (127.0, 127.0)

    text_luma = _contrasting_luma(rng, lo, hi)
    if text_luma is None or rng.random() < 0.15:
        # Busy background (or a sign): put a plate behind the word.
        margin = 0.15 * word.height
        plate = Polygon(polygon).buffer(margin, join_style=2 if len(polygon) == 4 else 1)
        plate_luma = rng.uniform(0, 255)
        mask = np.zeros((h, w), np.uint8)
        pts = np.asarray(plate.exterior.coords)
        cv2.fillPoly(mask, [np.round((pts - 0.5) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        _composite(img, mask.astype(np.float32) / 255.0, _colour_with_luma(rng, plate_luma), 0, 0)
        text_luma = _contrasting_luma(rng, plate_luma, plate_luma)
    colour = _colour_with_luma(rng, text_luma)
    opacity = rng.uniform(0.9, 1.0)

    if rng.random() < 0.1:  # drop shadow
        d = max(1, int(round(0.06 * word.height)))
        shadow = cv2.GaussianBlur(union, (0, 0), max(0.5, d / 2))
        shadow_luma = max(text_luma - 120, 0) if text_luma > 127 else min(text_luma + 120, 255)
        _composite(img, shadow * 0.5, _colour_with_luma(rng, shadow_luma), x + d, y + d)
    if outlined:
        outline_luma = _contrasting_luma(rng, text_luma, text_luma)
        _composite(img, union * opacity, _colour_with_luma(rng, outline_luma), x, y)
    _composite(img, fill * opacity, colour, x, y)


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
    for _ in range(num_words):
        dont_care = ""
        if rng.random() < _DONT_CARE_PROB:
            dont_care = ("tiny", "blurred", "occluded")[rng.integers(3)]
        height = class_height * rng.uniform(0.8, 1.2)
        margin = max(2.0, 0.2 * height)
        gap = max(2.0, (0.8 if dont_care == "blurred" else 0.25) * height)
        # Roughly 0.65 * height per character; big text gets short words.
        max_chars = int(min(MAX_WORD_LENGTH, max(2, (w - 2 * margin) / (0.65 * height))))
        for _ in range(_WORD_TRIES):
            word, outlined = _make_word(rng, fonts, height, max_chars, dont_care)
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
            break

    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.7))
    img += rng.normal(0, rng.uniform(0, 6), img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), words


# ---------------------------------------------------------------------------------------------- disk I/O
def synthetic_split_dir(root: str, split: str) -> str:
    """Directory of one split: ``<root>/synth_text/<split>``."""
    return os.path.join(root, "synth_text", split)


def _min_area_quad(polygon: np.ndarray, width: int, height: int) -> np.ndarray:
    """Minimum-area rectangle of a curved word, clockwise from the top-left corner of its reading direction."""
    top, bottom = _edges(polygon)
    direction = (top[-1] + bottom[-1]) / 2 - (top[0] + bottom[0]) / 2
    down = np.array([-direction[1], direction[0]])
    box = cv2.boxPoints(cv2.minAreaRect(polygon.astype(np.float32))).astype(np.float64)
    centre = box.mean(0)
    nxt = np.roll(box, -1, 0)
    if np.sum(box[:, 0] * nxt[:, 1] - nxt[:, 0] * box[:, 1]) < 0:  # counter-clockwise as displayed (y down)
        box = box[::-1]
    start = int(np.argmin((box - centre) @ direction + (box - centre) @ down))
    box = np.roll(box, -start, 0)
    return np.clip(box, 0, [width - 1, height - 1])


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


def load_synthetic_split(root: str, split: str) -> List[Dict[str, Any]]:
    """
    Read a generated split into Detectron2 dataset dicts (one per image, ``image_id`` = the image number i).

    Annotations: polygon ``segmentation``, XYXY_ABS ``bbox``, ``category_id`` 0, ``text``, and
    ``iscrowd`` 1 for don't-care words.
    """
    from detectron2.structures import BoxMode

    split_dir = synthetic_split_dir(root, split)
    image_dir = os.path.join(split_dir, "images")
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(
            f"Synthetic split {split!r} not found: {image_dir} does not exist. Generate it with "
            "`python tools/generate_synthetic_data.py --config-file configs/synth/<config>.yaml --output "
            f"{os.path.abspath(root)}` (see tools/generate_synthetic_data.py)."
        )
    if not os.path.exists(os.path.join(split_dir, "meta.json")):
        logger.warning("%s has no meta.json: the split may be incomplete; regenerate it", split_dir)

    indices = sorted(
        int(f[len("img_") : -len(".jpg")]) for f in os.listdir(image_dir) if f.startswith("img_") and f.endswith(".jpg")
    )
    dataset = []
    for i in indices:
        file_name = os.path.abspath(os.path.join(image_dir, f"img_{i}.jpg"))
        with Image.open(file_name) as im:
            width, height = im.size
        annotations = []
        for word in parse_polygon_gt(os.path.join(split_dir, "gts_polygon", f"poly_gt_img{i}.txt")):
            polygon = word["polygon"]
            x0, y0 = polygon.min(0)
            x1, y1 = polygon.max(0)
            annotations.append(
                {
                    "bbox": [float(x0), float(y0), float(x1), float(y1)],
                    "bbox_mode": BoxMode.XYXY_ABS,
                    "segmentation": [polygon.reshape(-1).astype(float).tolist()],
                    "category_id": 0,
                    "text": DONT_CARE if word["ignore"] else word["text"],
                    "iscrowd": int(word["ignore"]),
                }
            )
        dataset.append(
            {"file_name": file_name, "height": height, "width": width, "image_id": i, "annotations": annotations}
        )
    return dataset
