"""
The ICDAR end-to-end text-spotting protocol (RRC offline script as used for the published numbers) as pure
functions on polygons and strings (no Detectron2).

* Polygon IoU = area(A ∩ B) / area(A ∪ B) (shapely). Invalid polygons are repaired with `shapely.make_valid`
  (a self-intersecting "bow tie" keeps both lobes); polygons with fewer than 3 points, non-finite coordinates
  or zero area become empty and never match anything. The official script builds its polygons from
  int-truncated coordinates, for the ground truth and the detections alike; :func:`evaluate_protocol` does the
  same (``integer_coordinates=True``, truncation toward zero like numpy's int32 cast), the lower-level
  :func:`evaluate_image` and :func:`match_greedy` use the coordinates as given. (Known deviation: the official
  script's Polygon3 does not repair self-intersecting rings the way `make_valid` does; valid polygons, which
  is all of the real ground truth, give the same areas.)
* Don't-care ground truth (``ignore=True``, the ``###`` words) is not counted. A prediction is don't care,
  i.e. counted neither as a true nor as a false positive, when area(pred ∩ dontcare) / area(pred) is
  strictly above the area-precision threshold (0.5, ``AREA_PRECISION_CONSTRAINT``) for some don't-care ground
  truth (:func:`dont_care_predictions`); a prediction of zero area is never don't care. This is decided
  *before* matching, so a don't-care prediction cannot match a cared word. (DAVAR's offline script passes its
  IoU threshold as this constraint; with IoU 0.5 the two agree, for IoU 0.1 pass it explicitly.)
* Matching is the official greedy one: ground truth in order, and for each of them the predictions in order;
  the first unmatched (cared ground truth, cared prediction) pair with IoU **strictly** above the threshold is
  matched. It is not a maximum matching. The "file order" of this project's own predictions is descending
  score (the evaluator writes its submission files in that order).
* End-to-end correctness (:func:`transcription_match`): after `str.upper()` on both sides, the words are
  equal, or the ground truth with one special character (``!?.:,*"()·[]/'`` or space) removed at its start,
  its end, or both, equals the prediction. Nothing is removed from the prediction.
* Word spotting (:func:`word_spotting_transcription`): ground-truth words that fail the dictionary test become
  don't care, the others are compared in their cleaned form, by exact case-insensitive equality; the
  prediction is *not* cleaned (so ground truth fed back as predictions does not score 1.0).
* Lexicons (:mod:`dld.evaluation.lexicon`) rewrite the predicted words before the comparison; the geometry
  and hence the matching do not depend on them.
* Counts are summed over all images and P/R/H computed once (:func:`summarize`). An empty denominator gives 0:
  precision is 0 without predictions, recall is 0 without cared ground truth, the H-mean is 0 when
  P + R = 0, and word accuracy (correct / matched) is 0 without matched pairs.
"""
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from tabulate import tabulate

if TYPE_CHECKING:  # pragma: no cover
    from .lexicon import Lexicon

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
    "word_spotting_transcription",
    "evaluate_image",
    "evaluate_protocol",
    "truncate_polygon",
    "summarize",
    "hmean",
    "metrics_table",
    "SPECIAL_CHARACTERS",
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

# Characters the end-to-end comparison forgives at the start / end of the ground-truth word (offline script).
SPECIAL_CHARACTERS = "!?.:,*\"()·[]/' "
# Word spotting: characters turned into spaces when the ground truth is cleaned, characters never allowed,
# shortest cared word, and the allowed code-point ranges (Latin and Greek letters, and the hyphen).
_WS_SPECIAL_CHARACTERS = "'!?.:,*\"()·[]/"
_WS_NOT_ALLOWED = "×÷·"
MIN_LENGTH_CARE_WORD = 3
_WS_ALLOWED_RANGES = (
    (ord("a"), ord("z")),
    (ord("A"), ord("Z")),
    (0x00C0, 0x01BF),  # À .. ƿ (Latin-1 letters, Latin Extended-A, most of Extended-B; × ÷ are excluded above)
    (0x01C4, 0x027F),  # Ǆ .. ɿ (rest of Latin Extended-B, IPA extensions)
    (0x0386, 0x03FF),  # Ά .. Ͽ (Greek)
    (ord("-"), ord("-")),
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
    overlap: PairwiseOverlap, gt_ignore: np.ndarray, area_precision_threshold: float = 0.5
) -> np.ndarray:
    """
    Which predictions lie on don't-care ground truth and are left out of every count.

    Rule of the official script: area(pred ∩ dontcare) / area(pred) strictly above `area_precision_threshold`
    for some don't-care ground truth. A prediction of zero area is never don't care.

    Args:
        overlap: the [G, P] overlap table.
        gt_ignore: [G] bool, the don't-care ground truth.
        area_precision_threshold: the AREA_PRECISION_CONSTRAINT (0.5).

    Returns:
        [P] bool.
    """
    gt_ignore = np.asarray(gt_ignore, dtype=bool)
    num_pred = overlap.pred_area.shape[0]
    if num_pred == 0 or not gt_ignore.any():
        return np.zeros(num_pred, dtype=bool)
    area = overlap.pred_area
    precision = np.zeros((int(gt_ignore.sum()), num_pred), dtype=np.float64)
    np.divide(overlap.intersection[gt_ignore], area[None, :], out=precision, where=area[None, :] > 0)
    return (precision > area_precision_threshold).any(axis=0)


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


def _match(
    overlap: PairwiseOverlap, gt_ignore: np.ndarray, iou_threshold: float, area_precision_threshold: float
) -> MatchResult:
    iou = overlap.iou
    pred_ignored = dont_care_predictions(overlap, gt_ignore, area_precision_threshold)
    pairs = _greedy_pairs(iou, gt_ignore, pred_ignored, iou_threshold)
    return MatchResult(pairs=pairs, pred_ignored=pred_ignored, iou=iou)


def match_greedy(
    gt_polys: Sequence[PolygonLike],
    gt_ignore: Sequence[bool],
    pred_polys: Sequence[PolygonLike],
    iou_threshold: float = 0.5,
    area_precision_threshold: float = 0.5,
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
        area_precision_threshold: a prediction is don't care when more than this fraction of its area lies
            inside one don't-care ground truth.

    Returns:
        The matched pairs, the don't-care predictions and the IoU table.
    """
    gt_ignore = np.asarray(gt_ignore, dtype=bool).reshape(-1)
    if len(gt_ignore) != len(gt_polys):
        raise ValueError(f"{len(gt_polys)} ground-truth polygons but {len(gt_ignore)} ignore flags")
    return _match(pairwise_overlap(gt_polys, pred_polys), gt_ignore, iou_threshold, area_precision_threshold)


def transcription_match(gt_text: str, pred_text: str, special_characters: str = SPECIAL_CHARACTERS) -> bool:
    """
    End-to-end comparison: case-insensitive (`str.upper()` on both sides) equality, where the ground truth may
    lose one special character at its start, at its end, or at both (e.g. GT ``"HELLO!"`` matches ``"hello"``,
    but GT ``"HELLO"`` does not match ``"HELLO!"``).
    """
    gt, det = gt_text.upper(), pred_text.upper()
    if gt == det:
        return True
    if not gt:
        return False
    first, last = gt[0] in special_characters, gt[-1] in special_characters
    return (
        (first and gt[1:] == det)
        or (last and gt[:-1] == det)
        or (first and last and len(gt) >= 2 and gt[1:-1] == det)
    )


def _word_spotting_clean(text: str) -> str:
    if text[-2:] in ("'s", "'S"):
        text = text[:-2]
    text = text.strip("-")
    for c in _WS_SPECIAL_CHARACTERS:
        text = text.replace(c, " ")
    return text.strip()


def _word_spotting_char_allowed(ch: str) -> bool:
    if ch in _WS_NOT_ALLOWED:
        return False
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _WS_ALLOWED_RANGES)


def word_spotting_transcription(text: str) -> Optional[str]:
    """
    The word-spotting dictionary test on a ground-truth word.

    The word is cleaned: a trailing ``'s`` / ``'S`` is removed, ``-`` is stripped at both ends, the special
    characters ``'!?.:,*"()·[]/`` become spaces and surrounding white space is stripped. The cleaned word
    passes when it has no inner space, at least 3 characters, and only Latin or Greek letters or ``-``
    (no digits, none of ``×÷·``).

    Returns:
        The cleaned word if it passes (it is then compared in this form), None if the word becomes don't care.
    """
    cleaned = _word_spotting_clean(text)
    if " " in cleaned or len(cleaned) < MIN_LENGTH_CARE_WORD:
        return None
    if not all(_word_spotting_char_allowed(ch) for ch in cleaned):
        return None
    return cleaned


def _as_gt(x: Union[TextGT, Tuple]) -> TextGT:
    return x if isinstance(x, TextGT) else TextGT(*x)


def _as_pred(x: Union[TextPrediction, Tuple]) -> TextPrediction:
    return x if isinstance(x, TextPrediction) else TextPrediction(*x)


def _score_order(preds: Sequence[TextPrediction]) -> np.ndarray:
    if not len(preds):
        return np.arange(0)
    scores = np.array([float(p.score) for p in preds], dtype=np.float64)
    scores = np.nan_to_num(scores, nan=-np.inf)
    return np.argsort(-scores, kind="stable")


def _word_spotting_gt(gts: Sequence[TextGT]) -> Tuple[List[str], np.ndarray]:
    """Ground-truth texts and don't-care flags of the word-spotting mode."""
    texts, ignore = [], []
    for g in gts:
        cleaned = None if g.ignore else word_spotting_transcription(g.text)
        texts.append(cleaned if cleaned is not None else g.text)
        ignore.append(cleaned is None)
    return texts, np.array(ignore, dtype=bool)


def _counts(
    match: MatchResult,
    gt_ignore: np.ndarray,
    gt_texts: Sequence[str],
    pred_texts: Sequence[str],
    word_spotting: bool,
    pred_index: Optional[np.ndarray] = None,
) -> ImageCounts:
    pairs = []
    for g, p in match.pairs:
        if word_spotting:
            correct = gt_texts[g].upper() == pred_texts[p].upper()
        else:
            correct = transcription_match(gt_texts[g], pred_texts[p])
        pairs.append((g, int(pred_index[p]) if pred_index is not None else p, correct))
    num_ignored = int(match.pred_ignored.sum())
    return ImageCounts(
        num_gt=int((~gt_ignore).sum()),
        num_pred=len(pred_texts) - num_ignored,
        num_matched=len(pairs),
        num_correct=sum(c for _, _, c in pairs),
        num_ignored_pred=num_ignored,
        pairs=pairs,
    )


def evaluate_image(
    gts: Iterable[Union[TextGT, Tuple]],
    preds: Iterable[Union[TextPrediction, Tuple]],
    iou_threshold: float = 0.5,
    sort_by_score: bool = True,
    area_precision_threshold: float = 0.5,
    word_spotting: bool = False,
) -> ImageCounts:
    """
    Count one image under one setting (coordinates are used as given; see :func:`evaluate_protocol` for the
    full protocol).

    Args:
        gts: ground-truth words, :class:`TextGT` or tuples (polygon, text, ignore).
        preds: predicted words, :class:`TextPrediction` or tuples (polygon, text[, score]).
        iou_threshold: a pair matches when IoU > this value.
        sort_by_score: match the predictions in descending score order (stable); False keeps the given
            order, as the official script does with its files.
        area_precision_threshold: see :func:`dont_care_predictions`.
        word_spotting: word-spotting mode (:func:`word_spotting_transcription` on the ground truth, exact
            comparison) instead of end-to-end.

    Returns:
        The counts; `pairs` index into `gts` and `preds` as given.
    """
    gts = [_as_gt(g) for g in gts]
    preds = [_as_pred(p) for p in preds]
    order = _score_order(preds) if sort_by_score else np.arange(len(preds))
    ordered = [preds[i] for i in order]
    if word_spotting:
        gt_texts, gt_ignore = _word_spotting_gt(gts)
    else:
        gt_texts, gt_ignore = [g.text for g in gts], np.array([bool(g.ignore) for g in gts], dtype=bool)
    overlap = pairwise_overlap([g.polygon for g in gts], [p.polygon for p in ordered])
    match = _match(overlap, gt_ignore, iou_threshold, area_precision_threshold)
    return _counts(match, gt_ignore, gt_texts, [p.text for p in ordered], word_spotting, order)


def truncate_polygon(polygon: PolygonLike) -> PolygonLike:
    """Coordinates truncated toward zero, as the official script's int32 cast does (NaN stays NaN)."""
    if polygon is None:
        return None
    if isinstance(polygon, BaseGeometry):
        return shapely.transform(polygon, np.trunc)
    try:
        return np.trunc(np.asarray(polygon, dtype=np.float64))
    except (TypeError, ValueError):
        return polygon


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


def _spotting_metrics(counts: Sequence[ImageCounts], prefix: str, suffix: str) -> Dict[str, float]:
    m = summarize(counts)
    p, r = m["e2e_precision"], m["e2e_recall"]
    return {f"{prefix}_precision{suffix}": p, f"{prefix}_recall{suffix}": r, f"{prefix}_hmean{suffix}": hmean(p, r)}


def evaluate_protocol(
    ground_truth: Mapping[Hashable, Sequence[Union[TextGT, Tuple]]],
    predictions: Mapping[Hashable, Sequence[Union[TextPrediction, Tuple]]],
    lexicons: Sequence["Lexicon"] = (),
    iou_threshold: float = 0.5,
    area_precision_threshold: float = 0.5,
    word_spotting: bool = True,
    integer_coordinates: bool = True,
    sort_by_score: bool = False,
) -> Dict[str, Union[float, int]]:
    """
    The full protocol over a dataset: detection, end-to-end and word spotting, without and with each lexicon,
    in one pass (the matching is computed once per mode; lexicons only change the predicted words).

    Args:
        ground_truth: image key -> ground-truth words; every image here is evaluated (an image without
            predictions only misses words).
        predictions: image key -> predicted words in file order; every key must be in `ground_truth`.
        lexicons: lexicon settings (:class:`dld.evaluation.lexicon.Lexicon`); a per-image one is looked up
            by the image key (the N of ``voc_img_<N>.txt``).
        iou_threshold: a pair matches when IoU > this value (0.5; some published numbers use 0.1).
        area_precision_threshold: the don't-care rule's threshold (0.5).
        word_spotting: also compute the `ws_*` metrics.
        integer_coordinates: truncate every coordinate toward zero first, as the official script does.
        sort_by_score: match in descending score order instead of the given order.

    Returns:
        The keys of :data:`METRIC_KEYS` (no lexicon), then `e2e_{precision,recall,hmean}_<kind>` for each
        lexicon, then (with `word_spotting`) `ws_precision, ws_recall, ws_hmean, ws_num_gt, ws_num_pred`,
        `ws_det_{precision,recall,hmean}` (detection on the word-spotting ground truth, the official script's
        detection row in that mode) and `ws_{precision,recall,hmean}_<kind>`.
    """
    unknown = [k for k in predictions if k not in ground_truth]
    if unknown:
        raise ValueError(
            f"Predictions for image {unknown[0]!r} (and {len(unknown) - 1} more) have no ground truth"
        )
    kinds = [lex.kind for lex in lexicons]
    if len(set(kinds)) != len(kinds) or "" in kinds:
        raise ValueError(f"lexicon kinds must be distinct and non-empty, got {kinds}")

    preds: Dict[Hashable, List[TextPrediction]] = {}
    for key in ground_truth:
        words = [_as_pred(p) for p in predictions.get(key, ())]
        if sort_by_score:
            words = [words[i] for i in _score_order(words)]
        preds[key] = words
    texts = {key: [p.text for p in words] for key, words in preds.items()}
    texts_by_kind: Dict[str, Mapping[Hashable, List[str]]] = {"": texts}
    for lex in lexicons:
        texts_by_kind[lex.kind] = lex.correct(texts)

    e2e: Dict[str, List[ImageCounts]] = {k: [] for k in texts_by_kind}
    ws: Dict[str, List[ImageCounts]] = {k: [] for k in texts_by_kind}
    for key, gt_words in ground_truth.items():
        gts = [_as_gt(g) for g in gt_words]
        gt_polys = [g.polygon for g in gts]
        pred_polys = [p.polygon for p in preds[key]]
        if integer_coordinates:
            gt_polys = [truncate_polygon(p) for p in gt_polys]
            pred_polys = [truncate_polygon(p) for p in pred_polys]
        overlap = pairwise_overlap(gt_polys, pred_polys)

        gt_ignore = np.array([bool(g.ignore) for g in gts], dtype=bool)
        gt_texts = [g.text for g in gts]
        match = _match(overlap, gt_ignore, iou_threshold, area_precision_threshold)
        for kind, by_image in texts_by_kind.items():
            e2e[kind].append(_counts(match, gt_ignore, gt_texts, by_image[key], word_spotting=False))
        if word_spotting:
            ws_texts, ws_ignore = _word_spotting_gt(gts)
            ws_match = _match(overlap, ws_ignore, iou_threshold, area_precision_threshold)
            for kind, by_image in texts_by_kind.items():
                ws[kind].append(_counts(ws_match, ws_ignore, ws_texts, by_image[key], word_spotting=True))

    out: Dict[str, Union[float, int]] = summarize(e2e[""])
    for kind in kinds:
        out.update(_spotting_metrics(e2e[kind], "e2e", f"_{kind}"))
    if word_spotting:
        out.update(_spotting_metrics(ws[""], "ws", ""))
        ws_summary = summarize(ws[""])
        out["ws_num_gt"] = ws_summary["num_gt"]
        out["ws_num_pred"] = ws_summary["num_pred"]
        # The official script's detection row in word-spotting mode: the same matching, scored on the
        # word-spotting ground truth (words failing its filter are don't care).
        for m in ("precision", "recall", "hmean"):
            out[f"ws_det_{m}"] = ws_summary[f"det_{m}"]
        for kind in kinds:
            out.update(_spotting_metrics(ws[kind], "ws", f"_{kind}"))
    return out


def metrics_table(metrics: Mapping[str, Union[float, int]]) -> str:
    """
    A text table of :func:`evaluate_protocol`'s metrics in %: one row per setting (detection, then end-to-end
    and word spotting without and with each lexicon, word spotting after its own detection row), columns
    precision / recall / H-mean.
    """
    rows = []
    settings = (("det", "detection"), ("e2e", "end-to-end"), ("ws_det", "detection (word-spotting ground truth)"),
                ("ws", "word spotting"))
    for prefix, name in settings:
        key = f"{prefix}_hmean"
        for s in [k[len(key) :] for k in metrics if k == key or k.startswith(key + "_")]:
            label = f"{name} ({s[1:]})" if s else (name if prefix.endswith("det") else f"{name} (none)")
            rows.append([label] + [100.0 * metrics[f"{prefix}_{m}{s}"] for m in ("precision", "recall", "hmean")])
    return tabulate(rows, headers=["setting", "precision", "recall", "hmean"], tablefmt="pipe", floatfmt=".2f")
