"""
Total-Text ground truth as distributed: the legacy text format, the ``.mat`` files, and (by detection) the
converted ``x1,y1,...,xn,yn,word`` text. Import the public names from :mod:`dld.data.formats`.
"""
import ast
import io
import logging
import os
import re
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .formats_base import (
    IGNORE_TEXTS,
    AnnotationFormatError,
    AnnotationList,
    TextSource,
    decode_text,
    load_text,
    make_word,
    parse_coordinates,
    parse_lines,
    parse_records,
    read_bytes,
    source_name,
    split_lines,
)
from .formats_icdar import _parse_polygon_line

__all__ = ["parse_totaltext_legacy_gt", "parse_totaltext_mat", "parse_totaltext_gt", "mat_strings"]

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------- legacy text
# x: [[115 503 494 115]], y: [[322 346 426 404]], ornt: [u'm'], transcriptions: [u'nauGHTY']
_LEGACY_LINE = re.compile(
    r"^x:\s*\[\[([^\[\]]*)\]\]\s*,\s*y:\s*\[\[([^\[\]]*)\]\]\s*,\s*"
    r"ornt:\s*(\[.*?\])\s*,\s*transcriptions:\s*(\[.*\])\s*$",
    re.S,
)
_LEGACY_PARTS = (
    ("x: [[...]]", re.compile(r"^x:\s*\[\[[^\[\]]*\]\]")),
    ("y: [[...]]", re.compile(r"y:\s*\[\[[^\[\]]*\]\]")),
    ("ornt: [...]", re.compile(r"ornt:\s*\[")),
    ("transcriptions: [...]", re.compile(r"transcriptions:\s*\[.*\]\s*$", re.S)),
)
_LEGACY_SHAPE = "x: [[..]], y: [[..]], ornt: [u'..'], transcriptions: [u'..']"


def _logical_lines(lines: Sequence[str]) -> Iterator[Tuple[int, str]]:
    """Join continuation lines (those not starting with ``x:``) onto the record they continue."""
    start: Optional[int] = None
    parts: List[str] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if start is None or stripped.startswith("x:"):
            if start is not None:
                yield start, " ".join(parts)
            start, parts = number, [stripped]
        else:
            parts.append(stripped)
    if start is not None:
        yield start, " ".join(parts)


def _literal_string(field: str, what: str) -> str:
    """The single string of a Python list literal like ``[u'abc']``, read with ``ast.literal_eval``."""
    try:
        value = ast.literal_eval(field)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(f"{what} {field!r} is not a list of one quoted string") from None
    if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], str)):
        raise ValueError(f"{what} {field!r} is not a list of one quoted string")
    return value[0]


def _parse_legacy_record(record: str) -> Dict[str, Any]:
    m = _LEGACY_LINE.match(record)
    if m is None:
        for part, pattern in _LEGACY_PARTS:
            if pattern.search(record) is None:
                raise ValueError(f"missing or malformed {part!r}; expected {_LEGACY_SHAPE!r}")
        raise ValueError(f"expected {_LEGACY_SHAPE!r}")
    xs = parse_coordinates(m.group(1).split())
    ys = parse_coordinates(m.group(2).split())
    if len(xs) != len(ys):
        raise ValueError(f"x has {len(xs)} values but y has {len(ys)}")
    if len(xs) < 3:
        raise ValueError(f"a polygon needs at least 3 points, found {len(xs)}")
    orientation = _literal_string(m.group(3), "ornt")
    text = _literal_string(m.group(4), "transcriptions")
    coords = np.stack([xs, ys], axis=1)
    return make_word(coords, text, text in IGNORE_TEXTS, orientation=orientation)


def _parse_legacy_text(text: str, name: str, lenient: bool) -> AnnotationList:
    return parse_records(_logical_lines(split_lines(text)), name, _parse_legacy_record, lenient)


def parse_totaltext_legacy_gt(
    source: TextSource, lenient: bool = False, name: Optional[str] = None
) -> AnnotationList:
    """
    Parse a Total-Text ground-truth file in the legacy text format (``txt_format/*/poly_gt_img<N>.txt``)::

        x: [[115 503 494 115]], y: [[322 346 426 404]], ornt: [u'm'], transcriptions: [u'nauGHTY']

    A record that wraps continues on the following lines that do not start with ``x:``; errors name the
    record's first line. The two lists are read with ``ast.literal_eval`` (never ``eval``), so quotes and
    commas inside the transcription are fine. ``#`` (and ``###``) mark don't-care words. Each word dict also
    has ``"orientation"`` (``c``, ``h``, ``m`` or ``#``).

    Args:
        source: a path, or the file's raw bytes.
        lenient: skip malformed records (logged, counted in ``num_skipped``) instead of raising.
        name: the name error messages use (default: the path).
    """
    return _parse_legacy_text(*load_text(source, name), lenient)


# ---------------------------------------------------------------------------------------------- .mat
def mat_strings(cell: Any) -> List[str]:
    """The strings held by a ``scipy.io.loadmat`` cell (a char array, an array of strings, or nested)."""
    array = np.asarray(cell)
    if array.dtype.kind in "US":
        return [str(s) for s in array.ravel()]
    if array.dtype == object:
        return [s for item in array.ravel() for s in mat_strings(item)]
    raise ValueError(f"expected text, found a {array.dtype} array")


def _mat_string(cell: Any) -> str:
    strings = mat_strings(cell)
    if len(strings) > 1:
        raise ValueError(f"expected one string, found {len(strings)}")
    return strings[0] if strings else ""


def _mat_coordinates(cell: Any, axis: str) -> np.ndarray:
    array = np.asarray(cell)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{axis} coordinates are not numbers ({array.dtype})")
    values = array.astype(np.float64).ravel()
    if not np.isfinite(values).all():
        raise ValueError(f"{axis} coordinates are not all finite")
    return values


def _parse_mat_row(row: np.ndarray) -> Dict[str, Any]:
    xs = _mat_coordinates(row[1], "x")
    ys = _mat_coordinates(row[3], "y")
    if len(xs) != len(ys):
        raise ValueError(f"x has {len(xs)} values but y has {len(ys)}")
    if len(xs) < 3:
        raise ValueError(f"a polygon needs at least 3 points, found {len(xs)}")
    text = _mat_string(row[4])
    orientation = _mat_string(row[5])
    return make_word(np.stack([xs, ys], axis=1), text, text in IGNORE_TEXTS, orientation=orientation)


def parse_totaltext_mat(source: TextSource, lenient: bool = False, name: Optional[str] = None) -> AnnotationList:
    """
    Parse a Total-Text ``.mat`` ground-truth file: ``scipy.io.loadmat(f)["polygt"]`` (legacy) or ``["gt"]``
    (refined training GT), an object array of rows ``['x:', xs, 'y:', ys, transcription, orientation]``.

    ``#`` as transcription marks a don't-care word. Errors name the file and the 1-based row. Each word
    dict also has ``"orientation"``. ``source``, ``lenient`` and ``name`` as in
    :func:`parse_totaltext_legacy_gt`.
    """
    from scipy.io import loadmat

    name = source_name(source, name)
    try:
        mat = loadmat(io.BytesIO(read_bytes(source)))
    except Exception as e:  # scipy raises several types for a file that is not a MATLAB file
        raise AnnotationFormatError(f"{name}: not a readable MATLAB file ({type(e).__name__}: {e})") from e
    key = next((k for k in ("polygt", "gt") if k in mat), None)
    if key is None:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise AnnotationFormatError(f"{name}: no 'polygt' or 'gt' variable (found {found})")
    rows = np.asarray(mat[key])
    if rows.size == 0:
        return AnnotationList()
    if rows.ndim != 2 or rows.shape[1] != 6:
        raise AnnotationFormatError(
            f"{name}: {key!r} has shape {rows.shape}; expected (n, 6) rows "
            "['x:', xs, 'y:', ys, transcription, orientation]"
        )
    return parse_records(enumerate(rows, start=1), name, _parse_mat_row, lenient, unit="row")


# ---------------------------------------------------------------------------------------------- any of them
def parse_totaltext_gt(source: TextSource, lenient: bool = False, name: Optional[str] = None) -> AnnotationList:
    """
    Parse Total-Text ground truth in whichever of its shapes ``source`` holds: a ``.mat`` file (by its
    MATLAB header), the legacy text format (first record starts with ``x:``) or the converted
    ``x1,y1,...,xn,yn,transcription`` text. An empty file gives no words.
    """
    name = source_name(source, name)
    data = read_bytes(source)
    if data.startswith(b"MATLAB") or os.path.splitext(name)[1].lower() == ".mat":
        return parse_totaltext_mat(data, lenient, name)
    text = decode_text(data, name)
    lines = split_lines(text)
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("x:"):
        return _parse_legacy_text(text, name, lenient)
    return parse_lines(text, name, _parse_polygon_line, lenient)
