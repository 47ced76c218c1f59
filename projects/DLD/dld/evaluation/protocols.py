"""
The end-to-end text-spotting protocol as pure functions on polygons and strings (no Detectron2).

This version follows the ICDAR "end-to-end, no lexicon" protocol in the points below and simplifies the rest:

* Polygon IoU = area(A ∩ B) / area(A ∪ B) on float coordinates (shapely). Invalid polygons are repaired with
  `shapely.make_valid` (a self-intersecting "bow tie" keeps both lobes); polygons with fewer than 3 points,
  non-finite coordinates or zero area become empty and never match anything.
* Don't-care ground truth (`ignore=True`, the `###` words) is not counted. A prediction is don't care, i.e.
  counted neither as a true nor as a false positive, when its IoU with some don't-care ground truth is
  strictly above the IoU threshold. This is decided *before* matching, as in the official script, so a
  don't-care prediction cannot match a cared word. The official rule is "area(pred ∩ dontcare) / area(pred)
  above a threshold"; :func:`dont_care_predictions` is the one place to change for it (the overlap table it
  receives already has the intersection and both areas).
* Matching is the official greedy one: ground truth in order, and for each of them the predictions in order;
  the first unmatched (cared ground truth, cared prediction) pair with IoU **strictly** above the threshold is
  matched. It is not a maximum matching. :func:`evaluate_image` first sorts the predictions by descending
  score (a stable sort), because the official script uses file order and this project writes its files in
  score order.
* End-to-end correctness: the transcriptions are equal after `str.upper()` on both sides
  (:func:`transcription_match`; the special-character tolerance of the full protocol is not applied yet).
* Counts are summed over all images and P/R/H computed once (:func:`summarize`). An empty denominator gives 0:
  precision is 0 without predictions, recall is 0 without cared ground truth, the H-mean is 0 when
  P + R = 0, and word accuracy (correct / matched) is 0 without matched pairs.
"""
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Sequence, Tuple, Union

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = [
    "TextGT",
    "TextPrediction",
    "PairwiseOverlap",
    "MatchResult",
    "ImageCounts",
    "METRIC_KEYS",
    "to_geometry",
    "polygon_iou",
    "pairwise_overlap",
    "dont_care_predictions",
    "match_greedy",
    "transcription_match",
    "evaluate_image",
    "summarize",
    "hmean",
]

logger = logging.getLogger(__name__)

PolygonLike = Union[np.ndarray, Sequence[Sequence[float]], Sequence[float], BaseGeometry, None]

# Keys of the dictionary returned by `summarize`, in the order they are reported.
METRIC_KEYS = (
    "det_precision",
    "det_recall",
    "det_hmean",
    "e2e_precision",
    "e2e_recall",
    "e2e_hmean",
    "word_accuracy",
    "num_gt",
    "num_pred",
    "num_images",
    "num_matched",
    "num_correct",
    "num_ignored_pred",
)


@dataclass(frozen=True)
class TextGT:
    """
    One ground-truth word.

    Attributes:
        polygon: [k, 2] float array of (x, y) points (or anything :func:`to_geometry` accepts).
        text: the transcription.
        ignore: don't care (`iscrowd=1` or `###`): not counted, and predictions on it are not counted either.
    """

    polygon: Any
    text: str
    ignore: bool = False


@dataclass(frozen=True)
class TextPrediction:
    """
    One predicted word.

    Attributes:
        polygon: [k, 2] float array of (x, y) points (or anything :func:`to_geometry` accepts).
        text: the recognised transcription.
        score: detection score; :func:`evaluate_image` matches predictions in descending score order.
    """

    polygon: Any
    text: str
    score: float = 1.0


@dataclass(frozen=True)
class PairwiseOverlap:
    """
    Overlap of G ground-truth and P predicted polygons.

    Attributes:
        intersection: [G, P] intersection areas.
        gt_area: [G] areas of the ground-truth polygons.
        pred_area: [P] areas of the predicted polygons.
    """

    intersection: np.ndarray
    gt_area: np.ndarray
    pred_area: np.ndarray

    @property
    def iou(self) -> np.ndarray:
        """[G, P] intersection over union; 0 where the union is empty."""
        union = self.gt_area[:, None] + self.pred_area[None, :] - self.intersection
        out = np.zeros_like(self.intersection)
        np.divide(self.intersection, union, out=out, where=union > 0)
        return np.clip(out, 0.0, 1.0)


@dataclass(frozen=True)
class MatchResult:
    """
    Result of :func:`match_greedy`.

    Attributes:
        pairs: matched (gt_index, pred_index) pairs, in ground-truth order.
        pred_ignored: [P] bool, the don't-care predictions (not counted).
        iou: [G, P] IoU table the matching used.
    """

    pairs: List[Tuple[int, int]]
    pred_ignored: np.ndarray
    iou: np.ndarray


@dataclass
class ImageCounts:
    """
    Counts of one image; they add up over a dataset (see :func:`summarize`).

    Attributes:
        num_gt: cared ground-truth words.
        num_pred: cared predictions (all predictions minus the don't-care ones).
        num_matched: matched pairs (detection true positives).
        num_correct: matched pairs whose transcriptions match (end-to-end true positives).
        num_ignored_pred: don't-care predictions.
        pairs: matched (gt_index, pred_index, correct) triples, with indices into the inputs as given.
    """

    num_gt: int = 0
    num_pred: int = 0
    num_matched: int = 0
    num_correct: int = 0
    num_ignored_pred: int = 0
    pairs: List[Tuple[int, int, bool]] = field(default_factory=list)


def to_geometry(polygon: PolygonLike) -> BaseGeometry:
    """
    Make a valid, polygonal shapely geometry from points; never raises.

    Args:
        polygon: a [k, 2] array-like of (x, y) points, a flat [2k] list, or a shapely geometry.

    Returns:
        A valid Polygon or MultiPolygon, or an empty Polygon when the input has fewer than 3 points,
        non-finite coordinates, an odd number of values, or zero area. Self-intersecting rings are repaired
        with `shapely.make_valid` (method "structure"), which keeps every lobe of a bow tie.
    """
    empty = shapely.Polygon()
    if polygon is None:
        return empty
    try:
        if isinstance(polygon, BaseGeometry):
            geom = polygon
        else:
            pts = np.asarray(polygon, dtype=np.float64)
            if pts.size < 6 or pts.size % 2 != 0 or not np.all(np.isfinite(pts)):
                return empty
            geom = shapely.Polygon(pts.reshape(-1, 2))
        if geom.is_empty:
            return empty
        if not geom.is_valid:
            geom = shapely.make_valid(geom, method="structure", keep_collapsed=False)
        geom = _polygonal_part(geom)
        if geom.is_empty or not geom.area > 0:
            return empty
        return geom
    except (ValueError, TypeError, shapely.errors.GEOSException) as e:
        logger.debug("Unusable polygon %r: %s", polygon, e)
        return empty


def _polygonal_part(geom: BaseGeometry) -> BaseGeometry:
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
        if parts:
            return shapely.union_all(parts)
    return shapely.Polygon()


def polygon_iou(a: PolygonLike, b: PolygonLike) -> float:
    """
    Intersection over union of two polygons (see :func:`to_geometry` for the accepted inputs).

    Returns:
        IoU in [0, 1]; 0 when either polygon is empty or degenerate.
    """
    return float(pairwise_overlap([a], [b]).iou[0, 0])


def pairwise_overlap(gt_polys: Sequence[PolygonLike], pred_polys: Sequence[PolygonLike]) -> PairwiseOverlap:
    """
    Intersection areas of every (ground truth, prediction) pair.

    Only pairs whose bounding boxes overlap are intersected (one vectorised shapely call), so the cost is
    driven by the overlapping pairs.

    Args:
        gt_polys: G polygons.
        pred_polys: P polygons.

    Returns:
        The [G, P] overlap table.
    """
    gts = _geometry_array(gt_polys)
    preds = _geometry_array(pred_polys)
    gt_area = np.asarray(shapely.area(gts), dtype=np.float64).reshape(-1)
    pred_area = np.asarray(shapely.area(preds), dtype=np.float64).reshape(-1)
    inter = np.zeros((len(gts), len(preds)), dtype=np.float64)
    if len(gts) and len(preds):
        gb, pb = shapely.bounds(gts), shapely.bounds(preds)  # [n, 4] x0 y0 x1 y1, NaN when empty
        with np.errstate(invalid="ignore"):
            cand = (
                (gb[:, None, 0] < pb[None, :, 2])
                & (pb[None, :, 0] < gb[:, None, 2])
                & (gb[:, None, 1] < pb[None, :, 3])
                & (pb[None, :, 1] < gb[:, None, 3])
            )
        cand &= (gt_area[:, None] > 0) & (pred_area[None, :] > 0)
        gi, pi = np.nonzero(cand)
        if len(gi):
            inter[gi, pi] = _intersection_areas(gts[gi], preds[pi])
    return PairwiseOverlap(intersection=inter, gt_area=gt_area, pred_area=pred_area)


def _geometry_array(polys: Sequence[PolygonLike]) -> np.ndarray:
    out = np.empty(len(polys), dtype=object)
    for i, p in enumerate(polys):
        out[i] = to_geometry(p)
    return out


def _intersection_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return shapely.area(shapely.intersection(a, b)).astype(np.float64)
    except shapely.errors.GEOSException:
        # A topology error in one pair must not fail the whole image: retry pair by pair.
        out = np.zeros(len(a), dtype=np.float64)
        for i, (x, y) in enumerate(zip(a, b)):
            try:
                out[i] = x.intersection(y).area
            except shapely.errors.GEOSException:
                try:
                    out[i] = x.buffer(0).intersection(y.buffer(0)).area
                except shapely.errors.GEOSException as e:
                    logger.warning("Polygon intersection failed, counted as 0: %s", e)
        return out


def dont_care_predictions(
    overlap: PairwiseOverlap, gt_ignore: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """
    Which predictions lie on don't-care ground truth and are left out of every count.

    Current rule: IoU with some don't-care ground truth strictly above `iou_threshold`. (The full ICDAR rule,
    area(pred ∩ dontcare) / area(pred) > threshold, replaces this function; `overlap` has what it needs.)

    Args:
        overlap: the [G, P] overlap table.
        gt_ignore: [G] bool, the don't-care ground truth.
        iou_threshold: the matching threshold.

    Returns:
        [P] bool.
    """
    gt_ignore = np.asarray(gt_ignore, dtype=bool)
    num_pred = overlap.pred_area.shape[0]
    if num_pred == 0 or not gt_ignore.any():
        return np.zeros(num_pred, dtype=bool)
    return (overlap.iou[gt_ignore] > iou_threshold).any(axis=0) & (overlap.pred_area > 0)


def _greedy_pairs(iou: np.ndarray, gt_ignore: np.ndarray, pred_ignored: np.ndarray, thr: float):
    available = ~pred_ignored
    pairs = []
    for g in range(iou.shape[0]):
        if gt_ignore[g]:
            continue
        cand = np.flatnonzero(available & (iou[g] > thr))
        if len(cand):
            p = int(cand[0])
            available[p] = False
            pairs.append((g, p))
    return pairs


def match_greedy(
    gt_polys: Sequence[PolygonLike],
    gt_ignore: Sequence[bool],
    pred_polys: Sequence[PolygonLike],
    iou_threshold: float = 0.5,
) -> MatchResult:
    """
    Official greedy matching, in the order given (sort the predictions beforehand if order should follow
    the scores).

    The don't-care predictions are found first (:func:`dont_care_predictions`); then each cared ground truth,
    in order, takes the first still unmatched cared prediction with IoU strictly above `iou_threshold`.

    Args:
        gt_polys: G ground-truth polygons.
        gt_ignore: G flags, True for don't care.
        pred_polys: P predicted polygons.
        iou_threshold: a pair matches when IoU > this value.

    Returns:
        The matched pairs, the don't-care predictions and the IoU table.
    """
    gt_ignore = np.asarray(gt_ignore, dtype=bool).reshape(-1)
    if len(gt_ignore) != len(gt_polys):
        raise ValueError(f"{len(gt_polys)} ground-truth polygons but {len(gt_ignore)} ignore flags")
    overlap = pairwise_overlap(gt_polys, pred_polys)
    iou = overlap.iou
    pred_ignored = dont_care_predictions(overlap, gt_ignore, iou_threshold)
    pairs = _greedy_pairs(iou, gt_ignore, pred_ignored, iou_threshold)
    return MatchResult(pairs=pairs, pred_ignored=pred_ignored, iou=iou)


def transcription_match(gt_text: str, pred_text: str) -> bool:
    """End-to-end comparison without lexicon: equality after `str.upper()` on both sides."""
    return gt_text.upper() == pred_text.upper()


def _as_gt(x: Union[TextGT, Tuple]) -> TextGT:
    return x if isinstance(x, TextGT) else TextGT(*x)


def _as_pred(x: Union[TextPrediction, Tuple]) -> TextPrediction:
    return x if isinstance(x, TextPrediction) else TextPrediction(*x)


def evaluate_image(
    gts: Iterable[Union[TextGT, Tuple]],
    preds: Iterable[Union[TextPrediction, Tuple]],
    iou_threshold: float = 0.5,
    sort_by_score: bool = True,
) -> ImageCounts:
    """
    Count one image.

    Args:
        gts: ground-truth words, :class:`TextGT` or tuples (polygon, text, ignore).
        preds: predicted words, :class:`TextPrediction` or tuples (polygon, text[, score]).
        iou_threshold: a pair matches when IoU > this value.
        sort_by_score: match the predictions in descending score order (stable); False keeps the given
            order, as the official script does with its files.

    Returns:
        The counts; `pairs` index into `gts` and `preds` as given.
    """
    gts = [_as_gt(g) for g in gts]
    preds = [_as_pred(p) for p in preds]
    order = np.arange(len(preds))
    if sort_by_score and len(preds):
        scores = np.array([float(p.score) for p in preds], dtype=np.float64)
        scores = np.nan_to_num(scores, nan=-np.inf)
        order = np.argsort(-scores, kind="stable")
    ordered = [preds[i] for i in order]
    gt_ignore = np.array([bool(g.ignore) for g in gts], dtype=bool)
    result = match_greedy([g.polygon for g in gts], gt_ignore, [p.polygon for p in ordered], iou_threshold)

    pairs = []
    for g, p in result.pairs:
        correct = transcription_match(gts[g].text, ordered[p].text)
        pairs.append((g, int(order[p]), correct))
    num_ignored = int(result.pred_ignored.sum())
    return ImageCounts(
        num_gt=int((~gt_ignore).sum()),
        num_pred=len(preds) - num_ignored,
        num_matched=len(pairs),
        num_correct=sum(c for _, _, c in pairs),
        num_ignored_pred=num_ignored,
        pairs=pairs,
    )


def hmean(precision: float, recall: float) -> float:
    """Harmonic mean; 0 when precision + recall = 0."""
    s = precision + recall
    return 2.0 * precision * recall / s if s > 0 else 0.0


def _ratio(num: int, den: int) -> float:
    return float(num) / den if den > 0 else 0.0


def summarize(counts: Iterable[ImageCounts]) -> Dict[str, Union[float, int]]:
    """
    Dataset metrics from per-image counts (the counts are summed first, as in the official script).

    Returns:
        A dict with the keys of :data:`METRIC_KEYS`: fractions in [0, 1] for `det_*`, `e2e_*` and
        `word_accuracy`, integers for the `num_*` counts. Empty denominators give 0 (see the module docstring).
    """
    counts = list(counts)
    gt = sum(c.num_gt for c in counts)
    pred = sum(c.num_pred for c in counts)
    matched = sum(c.num_matched for c in counts)
    correct = sum(c.num_correct for c in counts)
    det_p, det_r = _ratio(matched, pred), _ratio(matched, gt)
    e2e_p, e2e_r = _ratio(correct, pred), _ratio(correct, gt)
    out = {
        "det_precision": det_p,
        "det_recall": det_r,
        "det_hmean": hmean(det_p, det_r),
        "e2e_precision": e2e_p,
        "e2e_recall": e2e_r,
        "e2e_hmean": hmean(e2e_p, e2e_r),
        "word_accuracy": _ratio(correct, matched),
        "num_gt": gt,
        "num_pred": pred,
        "num_images": len(counts),
        "num_matched": matched,
        "num_correct": correct,
        "num_ignored_pred": sum(c.num_ignored_pred for c in counts),
    }
    return out
