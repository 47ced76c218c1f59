"""
Parsers and writers for the raw annotation formats of scene-text datasets.

Every parser returns a list of word dicts ``{"polygon": float ndarray [k, 2], "text": str, "ignore": bool}``
with the points in the file's order (clockwise for the ICDAR formats).

Formats covered so far:

* ICDAR 2015 (``gt_img_<i>.txt``): ``x1,y1,...,x4,y4,transcription``.
* Polygon text (Total-Text converted, ``poly_gt_img<i>.txt``): ``x1,y1,...,xn,yn,transcription``.

Bad lines raise :class:`AnnotationFormatError` naming the file and the 1-based line number. With
``lenient=True`` they are skipped and logged instead, and the returned :class:`AnnotationList` records how many
were skipped in its ``num_skipped`` attribute.
"""
import logging
import math
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "AnnotationFormatError",
    "AnnotationList",
    "IGNORE_TEXTS",
    "parse_icdar2015_gt",
    "parse_polygon_gt",
    "write_icdar2015_gt",
    "write_polygon_gt",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
# A word to write: a parser dict ({"polygon", "text"[, "ignore"]}) or a (polygon, text) pair.
WordItem = Union[Mapping[str, Any], Tuple[Any, str]]

# Transcriptions that mark a "don't care" region: "###" in ICDAR 2015, also "#" in Total-Text.
_DONT_CARE = "###"
IGNORE_TEXTS = frozenset({_DONT_CARE, "#"})


class AnnotationFormatError(ValueError):
    """A ground-truth file that cannot be parsed; the message names the file and, when known, the line."""


class AnnotationList(list):
    """
    The words parsed from one file: a plain list of word dicts plus ``num_skipped``, the number of malformed
    lines dropped in lenient mode (always 0 in strict mode).
    """

    num_skipped: int = 0


# ---------------------------------------------------------------------------------------------- reading helpers
def _read_lines(path: PathLike) -> List[str]:
    """Lines of a UTF-8 text file with an optional BOM, without their LF / CRLF terminators."""
    try:
        # newline="" keeps a lone "\r" inside a transcription; only "\n" and "\r\n" end a line.
        with open(path, "r", encoding="utf-8-sig", newline="") as f:
            content = f.read()
    except UnicodeDecodeError as e:
        raise AnnotationFormatError(f"{os.fspath(path)}: not valid UTF-8 text ({e})") from e
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _parse_number(field: str) -> Optional[float]:
    try:
        value = float(field)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _parse_file(
    path: PathLike, parse_line: Callable[[str], Dict[str, Any]], lenient: bool
) -> AnnotationList:
    words = AnnotationList()
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            words.append(parse_line(line))
        except ValueError as e:
            message = f"{os.fspath(path)}, line {lineno}: {e}: {line[:80]!r}"
            if not lenient:
                raise AnnotationFormatError(message) from None
            words.num_skipped += 1
            logger.warning("Skipping malformed annotation: %s", message)
    return words


def _word(coords: Sequence[float], text: str, ignore: bool) -> Dict[str, Any]:
    return {"polygon": np.asarray(coords, dtype=np.float64).reshape(-1, 2), "text": text, "ignore": ignore}


# ---------------------------------------------------------------------------------------------- ICDAR 2015
def _parse_icdar2015_line(line: str) -> Dict[str, Any]:
    fields = line.split(",", 8)
    if len(fields) < 9:
        raise ValueError(f"expected 8 coordinates and a transcription, found {len(fields)} fields")
    coords = [_parse_number(f) for f in fields[:8]]
    bad = [f for f, c in zip(fields[:8], coords) if c is None]
    if bad:
        raise ValueError(f"coordinate {bad[0].strip()!r} is not a number")
    return _word(coords, fields[8], fields[8] == _DONT_CARE)


def parse_icdar2015_gt(path: PathLike, lenient: bool = False) -> AnnotationList:
    """
    Parse an ICDAR 2015 ground-truth file: one word per line, ``x1,y1,x2,y2,x3,y3,x4,y4,transcription``.

    The transcription is everything after the 8th comma (it may contain commas). UTF-8 with or without BOM,
    LF or CRLF line ends; blank lines are skipped; ``###`` marks a don't-care word (``ignore=True``).

    Returns:
        AnnotationList of ``{"polygon": ndarray [4, 2] float64, "text": str, "ignore": bool}``.
    """
    return _parse_file(path, _parse_icdar2015_line, lenient)


# ---------------------------------------------------------------------------------------------- polygon text
def _parse_polygon_line(line: str) -> Dict[str, Any]:
    fields = line.split(",")
    num_numeric = 0
    for field in fields:
        if _parse_number(field) is None:
            break
        num_numeric += 1
    # The coordinates are the longest even run of leading numbers that leaves a transcription field, so a
    # numeric transcription ("2015") is not taken for a coordinate.
    num_coords = min(num_numeric, len(fields) - 1)
    num_coords -= num_coords % 2
    if num_coords < 6:
        raise ValueError(f"expected at least 3 points (6 numbers) before the transcription, found {num_coords}")
    coords = [_parse_number(f) for f in fields[:num_coords]]
    text = ",".join(fields[num_coords:])
    return _word(coords, text, text in IGNORE_TEXTS)


def parse_polygon_gt(path: PathLike, lenient: bool = False) -> AnnotationList:
    """
    Parse a polygon ground-truth file (Total-Text converted format): ``x1,y1,...,xn,yn,transcription``.

    The leading fields that parse as numbers are the coordinates (an even count of at least 6, always leaving
    one field for the transcription); the remaining fields, rejoined with commas, are the transcription.
    ``###`` and ``#`` mark don't-care words. Encoding and line-end handling as in :func:`parse_icdar2015_gt`.

    Returns:
        AnnotationList of ``{"polygon": ndarray [n, 2] float64, "text": str, "ignore": bool}``.
    """
    return _parse_file(path, _parse_polygon_line, lenient)


# ---------------------------------------------------------------------------------------------- writers
def _unpack(item: WordItem) -> Tuple[np.ndarray, str]:
    if isinstance(item, Mapping):
        polygon, text = item["polygon"], item["text"]
        if item.get("ignore", False) and text not in IGNORE_TEXTS:
            text = _DONT_CARE
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
