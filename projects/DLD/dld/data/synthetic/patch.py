"""A word drawn into its own patch: coverage masks and the tight polygon of its ink."""
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .fonts import _font_height_ratio, _load_font

_INK_THRESHOLD = 0.25  # mask coverage counted as ink when fitting a polygon


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
