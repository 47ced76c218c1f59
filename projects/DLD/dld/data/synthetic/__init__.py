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
from .config import (  # noqa: F401  the constants were importable from here before the split into modules
    DONT_CARE,
    GENERATOR_VERSION,
    JPEG_QUALITY,
    MAX_WORD_LENGTH,
    PRINTABLE_ASCII,
    SynthConfig,
)
from .fonts import find_fonts
from .geometry import CURVE_POINTS  # noqa: F401
from .load import load_synthetic_split
from .render import generate_image
from .split import generate_split, split_is_current, split_meta, synthetic_split_dir

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
