"""
ICDAR-style submission zips: writing this project's predictions, reading ground-truth and submission zips back,
and scoring a submission against a ground-truth zip with :func:`dld.evaluation.protocols.evaluate_protocol`.

Zip members are one text file per image, named with the image number N: ``res_img_<N>.txt`` for predictions,
``gt_img_<N>.txt`` (ICDAR 2013/2015) or ``poly_gt_img<N>.txt`` (Total-Text) for ground truth; N is read from
the digits before ``.txt``. Each line is ``x1,y1,...,xn,yn,transcription``:

* ``quad`` format (ICDAR 2013/2015): exactly 4 points, the transcription is everything after the 8th comma;
* ``polygon`` format (Total-Text): the leading fields that parse as numbers, in an even count of at least 6
  that leaves one field, are the coordinates; the rest, rejoined with commas, is the transcription.

Files are UTF-8 with an optional BOM, LF or CRLF; ``###`` marks a don't-care ground-truth word. Bytes that are
not UTF-8 are read as U+FFFD, as the official script reads them (``errors="replace"``), with a warning that
counts them. Every error in a zip (not a zip, a malformed line, two members for one image, a prediction for an
image without ground truth) is a ValueError / FileNotFoundError whose one-line message names the file, the
member and the line.

The written form of a prediction (:func:`to_submission_words`) is what gets scored, in memory as from the zip:
integer coordinates (truncated toward zero), points clockwise in image coordinates, a polygon turned into its
``cv2.minAreaRect`` box starting at the top-left corner in ``quad`` format, and commas and line breaks removed
from the word.
"""
import codecs
import io
import logging
import math
import os
import re
import zipfile
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .lexicon import load_lexicons
from .protocols import TextGT, TextPrediction, evaluate_protocol

__all__ = [
    "POLYGON_FORMATS",
    "clockwise",
    "decode_replacing",
    "evaluate_submission",
    "guess_polygon_format",
    "parse_line",
    "polygon_to_quad",
    "read_gt_zip",
    "read_submission_zip",
    "read_zip_words",
    "submission_polygon",
    "submission_text",
    "to_submission_words",
    "write_submission_zip",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
POLYGON_FORMATS = ("quad", "polygon")
DONT_CARE_TEXT = "###"

_MEMBER = re.compile(r"([0-9]+)\.txt$", re.IGNORECASE)
_QUAD_MEMBER = re.compile(r"^(gt|res)_img_[0-9]+\.txt$", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------- geometry
def _signed_area(points: np.ndarray) -> float:
    """Shoelace area; positive for clockwise points in image coordinates (y down)."""
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)  # integer products could overflow
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def clockwise(points: np.ndarray) -> np.ndarray:
    """The points in clockwise order in image coordinates (reversed if they were counter-clockwise)."""
    points = np.asarray(points)
    return points[::-1].copy() if len(points) >= 3 and _signed_area(points) < 0 else points.copy()


def polygon_to_quad(points: np.ndarray) -> np.ndarray:
    """
    The minimum-area rotated rectangle of a polygon (`cv2.minAreaRect`), as [4, 2] float corners, clockwise in
    image coordinates and starting at the top-left corner (smallest x + y, then smallest y).
    """
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    box = cv2.boxPoints(cv2.minAreaRect(pts)).astype(np.float64)
    box = clockwise(box)
    start = min(range(4), key=lambda i: (box[i, 0] + box[i, 1], box[i, 1]))
    return np.roll(box, -start, axis=0)


def submission_polygon(points: np.ndarray, polygon_format: Optional[str] = None) -> np.ndarray:
    """
    A prediction's polygon as written: [4, 2] box for "quad", the polygon itself for "polygon" or None;
    int64 coordinates truncated toward zero, clockwise.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if polygon_format == "quad":
        pts = polygon_to_quad(pts)
    elif polygon_format not in (None, "polygon"):
        raise ValueError(f"polygon_format must be one of {POLYGON_FORMATS}, got {polygon_format!r}")
    # Clip before the cast (to the int32 range other evaluation scripts read): a coordinate beyond int64 would
    # wrap around to a value of the other sign.
    return clockwise(np.clip(np.trunc(pts), -(2**31), 2**31 - 1).astype(np.int64))


def submission_text(text: str) -> str:
    """A word as written: commas and line breaks removed."""
    return text.replace(",", "").replace("\r", "").replace("\n", "")


def to_submission_words(
    words: Sequence[TextPrediction], polygon_format: Optional[str] = None
) -> List[TextPrediction]:
    """The written form of predictions (see the module docstring); words with fewer than 3 finite points are
    dropped. The order and scores are kept."""
    out = []
    for w in words:
        pts = np.asarray(w.polygon, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 3 or not np.all(np.isfinite(pts)):
            continue
        poly = submission_polygon(pts, polygon_format)
        out.append(TextPrediction(poly.astype(np.float64), submission_text(w.text), w.score))
    return out


# ---------------------------------------------------------------------------------------------- reading
def _number(field: str) -> Optional[float]:
    try:
        value = float(field)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_line(line: str, polygon_format: Optional[str] = None) -> Tuple[np.ndarray, str]:
    """
    One ``x1,y1,...,xn,yn,transcription`` line.

    Args:
        polygon_format: "quad" reads exactly 4 points; "polygon" or None reads the leading numeric fields.

    Returns:
        ([n, 2] float64 points, transcription).

    Raises:
        ValueError: too few coordinates, or a non-numeric coordinate in "quad" format.
    """
    if polygon_format == "quad":
        fields = line.split(",", 8)
        if len(fields) < 9:
            raise ValueError(f"expected 8 coordinates and a transcription, found {len(fields)} fields")
        coords = [_number(f) for f in fields[:8]]
        if any(c is None for c in coords):
            raise ValueError("a coordinate is not a number")
        return np.asarray(coords, dtype=np.float64).reshape(4, 2), fields[8]
    fields = line.split(",")
    num = 0
    while num < len(fields) and _number(fields[num]) is not None:
        num += 1
    num = min(num, len(fields) - 1)
    num -= num % 2
    if num < 6:
        raise ValueError(f"expected at least 3 points before the transcription, found {num} coordinates")
    coords = [float(f) for f in fields[:num]]
    return np.asarray(coords, dtype=np.float64).reshape(-1, 2), ",".join(fields[num:])


def decode_replacing(data: bytes) -> Tuple[str, int]:
    """
    UTF-8 text without its BOM, each invalid byte sequence replaced by U+FFFD as ``bytes.decode(errors="replace")``
    does (the official script's reading); returns (text, number of bytes replaced).
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    parts, replaced, start = [], 0, 0
    while True:
        try:
            parts.append(data[start:].decode("utf-8"))
            return "".join(parts), replaced
        except UnicodeDecodeError as e:
            parts += [data[start : start + e.start].decode("utf-8"), "\ufffd"]
            replaced += e.end - e.start
            start += e.end


def _decode_lines(data: bytes, source: str) -> List[str]:
    text, replaced = decode_replacing(data)
    if replaced:
        logger.warning(f"{source}: {replaced} bytes are not UTF-8, read as U+FFFD (as the official script does)")
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _open_zip(path: PathLike) -> zipfile.ZipFile:
    """The zip at `path`, or a one-line error naming it."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{os.fspath(path)}: no such file")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, IsADirectoryError, OSError) as e:
        raise ValueError(f"{os.fspath(path)}: not a zip file ({e})") from None


def _members(zf: zipfile.ZipFile) -> Dict[int, str]:
    out: Dict[int, str] = {}
    for name in zf.namelist():
        if name.endswith("/"):
            continue
        m = _MEMBER.search(os.path.basename(name))
        if not m:
            continue
        key = int(m.group(1))
        if key in out:
            raise ValueError(f"{zf.filename}: members {out[key]!r} and {name!r} are both image {key}")
        out[key] = name
    return out


def guess_polygon_format(path: PathLike) -> str:
    """ "quad" when the zip's members are named ``gt_img_<N>.txt`` / ``res_img_<N>.txt``, else "polygon"."""
    with _open_zip(path) as zf:
        names = [os.path.basename(n) for n in _members(zf).values()]
    return "quad" if names and all(_QUAD_MEMBER.match(n) for n in names) else "polygon"


def read_zip_words(
    path: PathLike, polygon_format: Optional[str] = None
) -> Dict[int, List[Tuple[np.ndarray, str]]]:
    """
    Every line of every ``*<N>.txt`` member of a zip, keyed by N, in file order; blank lines are skipped.

    Raises:
        ValueError: a malformed line (the message names the member and the line number).
    """
    out: Dict[int, List[Tuple[np.ndarray, str]]] = {}
    with _open_zip(path) as zf:
        for key, name in sorted(_members(zf).items()):
            words = []
            for lineno, line in enumerate(_decode_lines(zf.read(name), f"{os.fspath(path)}:{name}"), start=1):
                if not line.strip():
                    continue
                try:
                    words.append(parse_line(line, polygon_format))
                except ValueError as e:
                    raise ValueError(f"{os.fspath(path)}:{name}, line {lineno}: {e}: {line[:80]!r}") from None
            out[key] = words
    return out


def read_gt_zip(path: PathLike, polygon_format: Optional[str] = None) -> Dict[int, List[TextGT]]:
    """Ground truth of a zip keyed by image number; ``###`` words are don't care. The format defaults to
    :func:`guess_polygon_format`."""
    polygon_format = polygon_format or guess_polygon_format(path)
    return {
        key: [TextGT(poly, text, text == DONT_CARE_TEXT) for poly, text in words]
        for key, words in read_zip_words(path, polygon_format).items()
    }


def read_submission_zip(path: PathLike, polygon_format: Optional[str] = None) -> Dict[int, List[TextPrediction]]:
    """Predictions of a submission zip keyed by image number, in file order (score 1.0)."""
    return {
        key: [TextPrediction(poly, text, 1.0) for poly, text in words]
        for key, words in read_zip_words(path, polygon_format).items()
    }


# ---------------------------------------------------------------------------------------------- writing
def _format_line(polygon: np.ndarray, text: str) -> str:
    coords = ",".join(str(int(v)) for v in np.asarray(polygon).reshape(-1))
    return f"{coords},{text}"


def write_submission_zip(
    path: PathLike,
    predictions: Mapping[int, Sequence[TextPrediction]],
    polygon_format: Optional[str] = None,
) -> None:
    """
    Write ``res_img_<N>.txt`` for every image N of `predictions` (an empty file for an image without words),
    lines in the given order, in their written form (:func:`to_submission_words`; with `polygon_format=None`
    polygons are kept as polygons).
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(predictions, key=int):
            words = to_submission_words(predictions[key], polygon_format)
            content = "".join(_format_line(w.polygon, w.text) + "\n" for w in words)
            zf.writestr(f"res_img_{int(key)}.txt", content.encode("utf-8"))
    dirname = os.path.dirname(os.fspath(path))
    if dirname:
        os.makedirs(dirname, exist_ok=True)
    with open(path, "wb") as f:
        f.write(buf.getvalue())


# ---------------------------------------------------------------------------------------------- scoring
def evaluate_submission(
    gt_zip: PathLike,
    pred_zip: PathLike,
    lexicons: Optional[Mapping[str, PathLike]] = None,
    iou_threshold: float = 0.5,
    area_precision_threshold: float = 0.5,
    polygon_format: Optional[str] = None,
    word_spotting: bool = True,
    lexicon_workers: int = 1,
) -> Dict[str, Union[float, int]]:
    """
    Score a submission zip against a ground-truth zip with the full protocol
    (:func:`dld.evaluation.protocols.evaluate_protocol`): every ground-truth image is evaluated, predictions in
    file order, coordinates truncated to integers.

    Args:
        gt_zip, pred_zip: the two zips (members named by image number, see the module docstring).
        lexicons: kind -> path ("strong": directory or zip of ``voc_img_<N>.txt``; others: one text file);
            a missing path is skipped with a warning.
        iou_threshold: a pair matches when IoU > this value.
        area_precision_threshold: the don't-care rule's threshold.
        polygon_format: line format of both zips; None guesses it from the ground truth's member names.
        word_spotting: also compute the `ws_*` metrics.
        lexicon_workers: threads for the nearest-word search.

    Returns:
        The metric dict of :func:`evaluate_protocol`.
    """
    polygon_format = polygon_format or guess_polygon_format(gt_zip)
    ground_truth = read_gt_zip(gt_zip, polygon_format)
    predictions = read_submission_zip(pred_zip, polygon_format)
    unknown = sorted(k for k in predictions if k not in ground_truth)
    if unknown:
        with _open_zip(pred_zip) as zf:
            member = _members(zf)[unknown[0]]
        raise ValueError(
            f"{os.fspath(pred_zip)}:{member}: image {unknown[0]} is not in the ground truth {os.fspath(gt_zip)}"
            + (f" ({len(unknown) - 1} more such members)" if len(unknown) > 1 else "")
        )
    if not any(predictions.values()):
        logger.warning(
            f"{os.fspath(pred_zip)} holds no prediction ({len(predictions)} members named *<N>.txt, no word in "
            "them): every precision, recall and H-mean is 0"
        )
    return evaluate_protocol(
        ground_truth,
        predictions,
        lexicons=load_lexicons(lexicons, workers=lexicon_workers),
        iou_threshold=iou_threshold,
        area_precision_threshold=area_precision_threshold,
        word_spotting=word_spotting,
    )
