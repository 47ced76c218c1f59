"""
Line-per-word ICDAR formats: ICDAR 2013 (``l t r b "word"``), ICDAR 2015 and MLT 2017 quadrilaterals, and the
comma-separated polygon format of converted Total-Text. Import the public names from :mod:`dld.data.formats`.
"""
import logging
import os
import re
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple, Union

import numpy as np

from .formats_base import (
    DONT_CARE,
    IGNORE_TEXTS,
    AnnotationList,
    PathLike,
    TextSource,
    load_text,
    make_word,
    parse_coordinates,
    parse_lines,
    parse_number,
)

__all__ = [
    "MLT_SCRIPTS",
    "parse_icdar2013_gt",
    "parse_icdar2015_gt",
    "parse_mlt2017_gt",
    "parse_polygon_gt",
    "write_icdar2015_gt",
    "write_polygon_gt",
]

logger = logging.getLogger(__name__)

# A word to write: a parser dict ({"polygon", "text"[, "ignore"]}) or a (polygon, text) pair.
WordItem = Union[Mapping[str, Any], Tuple[Any, str]]

# Scripts of MLT 2017 (plus Hindi, added by MLT 2019).
MLT_SCRIPTS = frozenset(
    {"Arabic", "Latin", "Chinese", "Japanese", "Korean", "Bangla", "Symbols", "Mixed", "None", "Hindi"}
)


# ---------------------------------------------------------------------------------------------- ICDAR 2013
# Four coordinates separated by spaces (training GT) or commas (test GT), then the quoted word, in which
# a backslash escapes a double quote or a backslash.
_SEP = r"(?:\s*,\s*|\s+)"
_FIELD = r'([^\s,"]+)'
_IC13_LINE = re.compile(rf'^\s*{_FIELD}{_SEP}{_FIELD}{_SEP}{_FIELD}{_SEP}{_FIELD}{_SEP}"((?:[^"\\]|\\.)*)"\s*$')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"(.*)$', re.S)
_ESCAPE = re.compile(r'\\(["\\])')


def _diagnose_icdar2013(line: str) -> str:
    """Why ``line`` does not match the ICDAR 2013 line shape."""
    quote = line.find('"')
    if quote < 0:
        return 'missing the quoted transcription ("word")'
    m = _QUOTED.match(line, quote)
    if m is None:
        return "missing the closing quote of the transcription"
    if m.group(2).strip():
        return "unexpected text after the closing quote"
    head = line[:quote].strip()
    head = head[:-1].rstrip() if head.endswith(",") else head
    fields = re.split(r"\s*,\s*|\s+", head) if head else []
    if len(fields) != 4:
        return f"expected 4 coordinates (left, top, right, bottom) before the quoted word, found {len(fields)}"
    parse_coordinates(fields)  # raises naming the field that is not a number
    return "malformed separators between the coordinates"


def _parse_icdar2013_line(line: str) -> Dict[str, Any]:
    m = _IC13_LINE.match(line)
    if m is None:
        raise ValueError(_diagnose_icdar2013(line))
    left, top, right, bottom = parse_coordinates(m.groups()[:4])
    text = _ESCAPE.sub(r"\1", m.group(5))
    return make_word([left, top, right, top, right, bottom, left, bottom], text, False)


def parse_icdar2013_gt(source: TextSource, lenient: bool = False, name: Optional[str] = None) -> AnnotationList:
    """
    Parse an ICDAR 2013 (Focused Scene Text) ground-truth file: ``l t r b "word"`` (training) or
    ``l, t, r, b, "word"`` (test), one word per line.

    Inside the quotes ``\\"`` and ``\\\\`` stand for ``"`` and ``\\``. The box becomes the clockwise polygon
    (l,t),(r,t),(r,b),(l,b). ICDAR 2013 has no don't-care class: ``ignore`` is always False.

    Args:
        source: a path, or the file's raw bytes (a zip member, for instance).
        lenient: skip malformed lines (logged, counted in ``num_skipped``) instead of raising.
        name: the name error messages use (default: the path).
    """
    return parse_lines(*load_text(source, name), _parse_icdar2013_line, lenient)


# ---------------------------------------------------------------------------------------------- ICDAR 2015
def _parse_icdar2015_line(line: str) -> Dict[str, Any]:
    fields = line.split(",", 8)
    if len(fields) < 9:
        raise ValueError(f"expected 8 coordinates and a transcription, found {len(fields)} fields")
    coords = parse_coordinates(fields[:8])
    return make_word(coords, fields[8], fields[8] == DONT_CARE)


def parse_icdar2015_gt(source: TextSource, lenient: bool = False, name: Optional[str] = None) -> AnnotationList:
    """
    Parse an ICDAR 2015 ground-truth file: one word per line, ``x1,y1,x2,y2,x3,y3,x4,y4,transcription``.

    The transcription is everything after the 8th comma (it may contain commas). UTF-8 with or without BOM,
    LF or CRLF line ends; blank lines are skipped; ``###`` marks a don't-care word (``ignore=True``).
    ``source``, ``lenient`` and ``name`` as in :func:`parse_icdar2013_gt`.

    Returns:
        AnnotationList of ``{"polygon": ndarray [4, 2] float64, "text": str, "ignore": bool}``.
    """
    return parse_lines(*load_text(source, name), _parse_icdar2015_line, lenient)


# ---------------------------------------------------------------------------------------------- MLT 2017
def _parse_mlt2017_line(line: str) -> Dict[str, Any]:
    fields = line.split(",", 9)
    if len(fields) < 10:
        raise ValueError(f"expected 8 coordinates, a script and a transcription, found {len(fields)} fields")
    coords = parse_coordinates(fields[:8])
    script = fields[8].strip()
    if not script:
        raise ValueError("the script field is empty")
    return make_word(coords, fields[9], fields[9] == DONT_CARE, script=script)


def parse_mlt2017_gt(source: TextSource, lenient: bool = False, name: Optional[str] = None) -> AnnotationList:
    """
    Parse an ICDAR 2017 MLT ground-truth file: ``x1,y1,...,x4,y4,script,transcription`` per line.

    The transcription is everything after the 9th comma; ``###`` is don't care. An empty script field is an
    error; a script outside :data:`MLT_SCRIPTS` is accepted with a logged warning. Each word dict also has
    ``"script"``. ``source``, ``lenient`` and ``name`` as in :func:`parse_icdar2013_gt`.
    """
    text, name = load_text(source, name)
    words = parse_lines(text, name, _parse_mlt2017_line, lenient)
    unknown = sorted({w["script"] for w in words} - MLT_SCRIPTS)
    if unknown:
        logger.warning("%s: unknown MLT script name(s) %s", name, unknown)
    return words


# ---------------------------------------------------------------------------------------------- polygon text
def _parse_polygon_line(line: str) -> Dict[str, Any]:
    fields = line.split(",")
    num_numeric = 0
    for field in fields:
        if parse_number(field) is None:
            break
        num_numeric += 1
    # The coordinates are the longest even run of leading numbers that leaves a transcription field, so a
    # numeric transcription ("2015") is not taken for a coordinate.
    num_coords = min(num_numeric, len(fields) - 1)
    num_coords -= num_coords % 2
    if num_coords < 6:
        raise ValueError(f"expected at least 3 points (6 numbers) before the transcription, found {num_coords}")
    coords = parse_coordinates(fields[:num_coords])
    text = ",".join(fields[num_coords:])
    return make_word(coords, text, text in IGNORE_TEXTS)


def parse_polygon_gt(source: TextSource, lenient: bool = False, name: Optional[str] = None) -> AnnotationList:
    """
    Parse a polygon ground-truth file (Total-Text converted format): ``x1,y1,...,xn,yn,transcription``.

    The leading fields that parse as numbers are the coordinates (an even count of at least 6, always leaving
    one field for the transcription); the remaining fields, rejoined with commas, are the transcription.
    ``###`` and ``#`` mark don't-care words. Encoding and line-end handling as in :func:`parse_icdar2015_gt`.

    Returns:
        AnnotationList of ``{"polygon": ndarray [n, 2] float64, "text": str, "ignore": bool}``.
    """
    return parse_lines(*load_text(source, name), _parse_polygon_line, lenient)


# ---------------------------------------------------------------------------------------------- writers
def _unpack(item: WordItem) -> Tuple[np.ndarray, str]:
    if isinstance(item, Mapping):
        polygon, text = item["polygon"], item["text"]
        if item.get("ignore", False) and text not in IGNORE_TEXTS:
            text = DONT_CARE
    else:
        polygon, text = item
    if "\n" in text or "\r" in text:
        raise ValueError(f"transcription {text!r} contains a line break")
    return np.asarray(polygon, dtype=np.float64).reshape(-1, 2), text


def _write_lines(path: PathLike, items: Iterable[WordItem], min_points: int, max_points: Optional[int]) -> None:
    lines = []
    for item in items:
        polygon, text = _unpack(item)
        if len(polygon) < min_points or (max_points is not None and len(polygon) > max_points):
            expected = f"{min_points}" if min_points == max_points else f"at least {min_points}"
            raise ValueError(f"{os.fspath(path)}: expected {expected} points per word, got {len(polygon)}")
        coords = ",".join(str(int(v)) for v in np.rint(polygon).reshape(-1))
        lines.append(f"{coords},{text}\n")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.writelines(lines)


def write_icdar2015_gt(path: PathLike, items: Iterable[WordItem]) -> None:
    """
    Write words in ICDAR 2015 format (UTF-8, LF, coordinates rounded to integers).

    Args:
        items: word dicts as returned by the parsers (``ignore=True`` writes ``###``) or ``(polygon, text)``
            pairs; every polygon must have 4 points, clockwise.
    """
    _write_lines(path, items, 4, 4)


def write_polygon_gt(path: PathLike, items: Iterable[WordItem]) -> None:
    """Write words in the polygon text format (UTF-8, LF, integer coordinates); polygons need ≥ 3 points."""
    _write_lines(path, items, 3, None)
