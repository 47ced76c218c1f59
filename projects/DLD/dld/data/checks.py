"""
Checks that a word annotation can be a training target and that a dataset is usable, before training starts.

A word is *bad* when its polygon has fewer than 3 points or an odd number of coordinates, a coordinate that is
not a finite number, zero area, or no pixel inside its image; or when its segmentation is not a polygon list or
its transcription not a string. A record is bad when it has no ``file_name`` or a height/width that is not a
positive integer. What happens to a bad record follows ``on_bad`` (``DATASETS.ON_BAD_ANNOTATION``): ``"error"``
raises :class:`BadAnnotationError` naming the image, the annotation and what is wrong; ``"skip"`` drops it,
counts it and logs a summary.

A self-intersecting polygon (a "bow tie" from points in the wrong order) is not bad: it keeps both lobes, as the
evaluator scores it; such words are counted and logged, never dropped.
"""
import logging
from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "BAD_INPUT_MODES",
    "BadAnnotationError",
    "annotation_problem",
    "check_dataset_dicts",
    "check_on_bad_mode",
    "is_self_intersecting",
    "polygon_problem",
    "record_problem",
]

logger = logging.getLogger(__name__)

BAD_INPUT_MODES = ("error", "skip")
# How many bad records a summary names before it only counts them.
_EXAMPLES = 5

# (kind, message): the kind counts problems in a summary, the message says what is wrong with this one.
Problem = Tuple[str, str]


class BadAnnotationError(ValueError):
    """An annotation or a dataset record that cannot be used; the message names the file and what is wrong."""


def check_on_bad_mode(mode: str, key: str = "DATASETS.ON_BAD_ANNOTATION") -> str:
    if mode not in BAD_INPUT_MODES:
        raise ValueError(f"{key} must be one of {BAD_INPUT_MODES}, got {mode!r}")
    return mode


def _shoelace(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    # Slices rather than np.roll: this runs once per word of a dataset (millions for SynthText).
    twice = x[:-1] @ y[1:] - x[1:] @ y[:-1] + x[-1] * y[0] - x[0] * y[-1]
    return 0.5 * abs(float(twice))


def is_self_intersecting(points: np.ndarray) -> bool:
    """Whether the closed ring through ``points`` [k, 2] (finite, k >= 3) crosses or touches itself."""
    if len(points) < 4:
        return False
    from shapely.geometry import Polygon

    return not Polygon(points).is_valid


def _area(points: np.ndarray) -> float:
    """The area the ring encloses; a self-intersecting ring counts each lobe (the shoelace would cancel them)."""
    area = _shoelace(points)
    if area > 0.5 or len(points) < 4:
        return area
    from shapely.geometry import Polygon
    from shapely.validation import make_valid

    return float(make_valid(Polygon(points)).area)


def polygon_problem(coords: Any, width: Optional[int] = None, height: Optional[int] = None) -> Optional[Problem]:
    """
    Why the flat polygon ``coords`` (``[x1, y1, x2, y2, ...]``) cannot be a word target in a ``width`` x
    ``height`` image (sizes optional), as ``(kind, message)``; None when it can.
    """
    try:
        values = np.asarray(coords, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return "coordinates", f"polygon {_short(coords)} is not a list of numbers"
    if values.size % 2:
        return "points", f"polygon has an odd number of coordinates ({values.size})"
    if values.size < 6:
        return "points", f"polygon has {values.size // 2} point(s); a polygon needs at least 3"
    if not np.isfinite(values).all():
        bad = values[~np.isfinite(values)][0]
        return "coordinates", f"polygon has a non-finite coordinate ({bad})"
    points = values.reshape(-1, 2)
    # Outside before zero area: a loader that clipped an outside polygon to the border left a flat one.
    if width is not None and height is not None:
        x0, y0 = np.maximum(points.min(axis=0), 0.0)
        x1, y1 = np.minimum(points.max(axis=0), [width, height])
        if x1 <= x0 or y1 <= y0:
            return "outside", (
                f"polygon lies entirely outside the {width}x{height} image (x {points[:, 0].min():g}.."
                f"{points[:, 0].max():g}, y {points[:, 1].min():g}..{points[:, 1].max():g})"
            )
    if _area(points) <= 1e-6:
        return "area", f"polygon has zero area (its points lie on a line): {_short(values.tolist())}"
    return None


def annotation_problem(annotation: Mapping[str, Any], width: Optional[int], height: Optional[int]) -> Optional[Problem]:
    """Why a Detectron2 word annotation cannot be a target (its polygon, else its box, and its text), or None."""
    text = annotation.get("text", "")
    if not isinstance(text, str):
        return "text", f"transcription {text!r} is not a string"
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, np.ndarray):  # its truth value is ambiguous, and Detectron2 wants a list
        return "segmentation", "segmentation must be a list of polygons ([[x1, y1, ...]]), not an array"
    if segmentation:
        if isinstance(segmentation, dict):
            return "segmentation", "segmentation is an RLE mask; text annotations need polygons"
        if not isinstance(segmentation, (list, tuple)):
            return "segmentation", f"segmentation {_short(segmentation)} is not a list of polygons"
        first = segmentation[0]
        if not isinstance(first, (list, tuple, np.ndarray)):
            return "segmentation", "segmentation must be a list of polygons ([[x1, y1, ...]]), not one flat polygon"
        return polygon_problem(first, width, height)
    if "bbox" not in annotation:
        return "segmentation", "annotation has neither a segmentation nor a bbox"
    from detectron2.structures import BoxMode

    try:
        x0, y0, x1, y1 = BoxMode.convert(
            [float(v) for v in annotation["bbox"]], annotation.get("bbox_mode", BoxMode.XYWH_ABS), BoxMode.XYXY_ABS
        )
    except (TypeError, ValueError, AssertionError):
        return "coordinates", f"bbox {_short(annotation['bbox'])} is not 4 numbers"
    return polygon_problem([x0, y0, x1, y0, x1, y1, x0, y1], width, height)


def record_problem(record: Mapping[str, Any]) -> Optional[Problem]:
    """Why a dataset dict cannot be read as an image with words (no file name, zero or missing size), or None."""
    if not record.get("file_name"):
        return "record", "record has no file_name"
    for key in ("height", "width"):
        value = record.get(key)
        if not _is_positive_integer(value):
            return "image size", f"image {key} is {value!r}; a zero-size or unsized image cannot be read"
    if not isinstance(record.get("annotations", []), (list, tuple)):
        return "record", "annotations is not a list"
    return None


def check_dataset_dicts(
    dataset: Sequence[Dict[str, Any]], dataset_name: str, on_bad: str = "error"
) -> List[Dict[str, Any]]:
    """
    The records of ``dataset`` with every bad record and bad word handled as ``on_bad`` says (see the module
    docstring); records that lose words are shallow copies, the input is not modified. Logs one summary:
    skipped records and words by kind, self-intersecting words kept, and the first few file names.

    Raises:
        BadAnnotationError: ``on_bad="error"`` and a bad record or word, or an empty dataset (either mode).
    """
    check_on_bad_mode(on_bad)
    if len(dataset) == 0:
        raise BadAnnotationError(f"Dataset '{dataset_name}' is empty: it has no images")
    skipped: Counter = Counter()
    examples: List[str] = []
    num_bowties = 0
    bowtie_example = ""
    out: List[Dict[str, Any]] = []

    def bad(where: str, problem: Problem) -> None:
        message = f"{where}: {problem[1]}"
        if on_bad == "error":
            raise BadAnnotationError(
                f"Dataset '{dataset_name}': {message}. Fix it, or set DATASETS.ON_BAD_ANNOTATION skip to drop "
                "bad records (counted and logged)"
            )
        skipped[problem[0]] += 1
        if len(examples) < _EXAMPLES:
            examples.append(message)

    for index, record in enumerate(dataset):
        where = str(record.get("file_name") or f"record {index}")
        problem = record_problem(record)
        if problem is not None:
            bad(where, ("image: " + problem[0], problem[1]))
            continue
        annotations = record.get("annotations", [])
        keep = []
        for k, annotation in enumerate(annotations):
            word = f"{where}, annotation {k}" + (f" ({annotation['source']})" if "source" in annotation else "")
            problem = annotation_problem(annotation, record["width"], record["height"])
            if problem is not None:
                bad(word, problem)
                continue
            if _is_bowtie(annotation):
                num_bowties += 1
                bowtie_example = bowtie_example or word
            keep.append(annotation)
        out.append(record if len(keep) == len(annotations) else dict(record, annotations=keep))

    if skipped:
        summary = ", ".join(f"{n} ({kind})" for kind, n in sorted(skipped.items()))
        logger.warning(
            "Dataset '%s': skipped bad annotations: %s; first: %s", dataset_name, summary, "; ".join(examples)
        )
    if num_bowties:
        logger.warning(
            "Dataset '%s': %d self-intersecting polygon(s) kept as they are (both lobes), first: %s",
            dataset_name, num_bowties, bowtie_example,
        )
    if not out:
        raise BadAnnotationError(f"Dataset '{dataset_name}': no usable image left after skipping bad records")
    return out


def _is_bowtie(annotation: Mapping[str, Any]) -> bool:
    segmentation = annotation.get("segmentation")
    if not segmentation:
        return False
    return is_self_intersecting(np.asarray(segmentation[0], dtype=np.float64).reshape(-1, 2))


def _is_positive_integer(value: Any) -> bool:
    """A positive whole number (``96`` or ``96.0``, as JSON may give it), not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return bool(np.isfinite(value)) and value > 0 and float(value).is_integer()


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
