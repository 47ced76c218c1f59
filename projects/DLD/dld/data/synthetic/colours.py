"""Random colours with a given luma, and lumas that contrast with a background."""
from typing import Optional

import numpy as np

_MIN_CONTRAST = 0.35  # minimum luma difference (0..1) between text and the background under it


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
