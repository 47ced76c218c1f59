"""Painting placed words onto an image: contrasting colours, plates, shadows, outlines and occluders."""
import cv2
import numpy as np
from shapely.geometry import Polygon

from .colours import _colour_with_luma, _contrasting_luma, _luma, _random_colour
from .geometry import _edges
from .patch import _Word


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
