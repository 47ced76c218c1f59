"""Word warps (rotation, perspective, circular arcs) and the polygon helpers built on them."""
import math
from typing import Tuple

import cv2
import numpy as np

from .patch import _Word

CURVE_POINTS = 7  # points per long edge of a curved word's polygon (14 in all)


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


def _edges(polygon: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Top edge (left to right) and bottom edge (left to right) of a 2n-point word polygon."""
    n = len(polygon) // 2
    return polygon[:n], polygon[n:][::-1]


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
