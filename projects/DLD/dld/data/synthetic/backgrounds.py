"""Image backgrounds: flat, gradients, noise, stripes or checkers, plus non-text clutter."""
import math

import cv2
import numpy as np

from .colours import _random_colour


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
