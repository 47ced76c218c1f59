"""
Parsers and writers for the raw annotation formats of scene-text datasets, as distributed.

Every text parser returns an :class:`AnnotationList` of word dicts
``{"polygon": float64 ndarray [k, 2], "text": str, "ignore": bool, "line": int}`` in file order, with the points
in the file's order (clockwise for the ICDAR formats); ``ignore`` marks don't-care words (``###``, Total-Text
``#``); ``line`` is the word's 1-based line (``"row"`` instead for a ``.mat`` file).

========================  =====================================================  ==============================
format key                shape                                                  parser
========================  =====================================================  ==============================
``icdar2013``             ``l t r b "word"`` / ``l, t, r, b, "word"``            :func:`parse_icdar2013_gt`
``icdar2015``             ``x1,y1,...,x4,y4,transcription``                      :func:`parse_icdar2015_gt`
``mlt2017``               ``x1,y1,...,x4,y4,script,transcription``               :func:`parse_mlt2017_gt`
``polygon``               ``x1,y1,...,xn,yn,transcription`` (Total-Text conv.)   :func:`parse_polygon_gt`
``totaltext_legacy``      ``x: [[..]], y: [[..]], ornt: [..], transcriptions:``  :func:`parse_totaltext_legacy_gt`
``totaltext_mat``         ``.mat`` with ``polygt`` (or ``gt``) rows              :func:`parse_totaltext_mat`
``totaltext``             any of the three Total-Text shapes, detected           :func:`parse_totaltext_gt`
========================  =====================================================  ==============================

SynthText's ``gt.mat`` is read by :func:`load_synthtext_gt` (cached; see :mod:`dld.data.formats_synthtext`).

Text files are UTF-8 with or without a BOM, LF or CRLF; anything else raises :class:`AnnotationFormatError`
naming the file. Each parser takes a path or the file's raw bytes plus a ``name`` for messages
(:func:`parse_gt_zip` reads the members of a zip that way). A malformed line raises
:class:`AnnotationFormatError` naming the file, the 1-based line (the first line of a wrapped record; the row
of a ``.mat``) and what is wrong. With ``lenient=True`` it is skipped and logged instead, and the returned
list counts the skips in ``num_skipped``.
"""
import os
import zipfile
from typing import Callable, Dict, Optional, Union

from .formats_base import (
    DONT_CARE,
    IGNORE_TEXTS,
    AnnotationFormatError,
    AnnotationList,
    PathLike,
    TextSource,
    decode_text,
)
from .formats_icdar import (
    MLT_SCRIPTS,
    parse_icdar2013_gt,
    parse_icdar2015_gt,
    parse_mlt2017_gt,
    parse_polygon_gt,
    write_icdar2015_gt,
    write_polygon_gt,
)
from .formats_synthtext import SynthTextGT, load_synthtext_gt, parse_synthtext_gt, synthtext_cache_path
from .formats_totaltext import parse_totaltext_gt, parse_totaltext_legacy_gt, parse_totaltext_mat

__all__ = [
    "AnnotationFormatError",
    "AnnotationList",
    "DONT_CARE",
    "GT_PARSERS",
    "IGNORE_TEXTS",
    "MLT_SCRIPTS",
    "SynthTextGT",
    "load_synthtext_gt",
    "parse_gt",
    "parse_gt_zip",
    "parse_icdar2013_gt",
    "parse_icdar2015_gt",
    "parse_mlt2017_gt",
    "parse_polygon_gt",
    "parse_synthtext_gt",
    "parse_totaltext_gt",
    "parse_totaltext_legacy_gt",
    "parse_totaltext_mat",
    "synthtext_cache_path",
    "write_icdar2015_gt",
    "write_polygon_gt",
]

Parser = Callable[..., AnnotationList]

# Format key -> parser(source, lenient=False, name=None).
GT_PARSERS: Dict[str, Parser] = {
    "icdar2013": parse_icdar2013_gt,
    "icdar2015": parse_icdar2015_gt,
    "mlt2017": parse_mlt2017_gt,
    "polygon": parse_polygon_gt,
    "totaltext_legacy": parse_totaltext_legacy_gt,
    "totaltext_mat": parse_totaltext_mat,
    "totaltext": parse_totaltext_gt,
}


def _parser(fmt: str) -> Parser:
    try:
        return GT_PARSERS[fmt]
    except KeyError:
        raise KeyError(f"Unknown annotation format {fmt!r}; known: {sorted(GT_PARSERS)}") from None


def parse_gt(
    source: Union[TextSource, str], fmt: str, lenient: bool = False, name: Optional[str] = None, is_text: bool = False
) -> AnnotationList:
    """
    Parse one ground-truth file with the parser of format key ``fmt`` (see the module docstring).

    Args:
        source: a path or raw bytes; with ``is_text=True``, the file's content as a str.
        name: the name error messages use (default: the path, or ``<text>``/``<bytes>``).
    """
    if is_text:
        if not isinstance(source, str):
            raise TypeError("is_text=True needs the content as a str")
        source = decode_text(source, name or "<text>").encode("utf-8")
        name = name or "<text>"
    return _parser(fmt)(source, lenient=lenient, name=name)


def parse_gt_zip(zip_path: PathLike, fmt: str, lenient: bool = False) -> Dict[str, AnnotationList]:
    """
    Parse every file of a zip of ground-truth files (e.g. an official end-to-end GT zip) without extracting
    it: ``{member name: words}`` in the zip's order, directories skipped. Messages name ``<zip>:<member>``.
    """
    parse = _parser(fmt)
    out: Dict[str, AnnotationList] = {}
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            out[info.filename] = parse(
                zf.read(info), lenient=lenient, name=f"{os.fspath(zip_path)}:{info.filename}"
            )
    return out
