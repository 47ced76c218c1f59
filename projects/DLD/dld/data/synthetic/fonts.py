"""The fonts the generator draws from, loaded and measured once per process."""
import functools
import logging
import os
from typing import Tuple

from PIL import ImageFont

from .config import PRINTABLE_ASCII

logger = logging.getLogger(__package__)  # the package's logger, as before the split into modules

_MATPLOTLIB_FONT_PREFIXES = ("DejaVuSans-", "DejaVuSans.", "DejaVuSerif", "DejaVuSansMono", "STIXGeneral")


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
