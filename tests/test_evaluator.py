"""Tests of the end-to-end text-spotting protocol and of `TextSpottingEvaluator`."""
import json
import logging
import math
import uuid
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, BoxMode, Instances

from dld.config import add_dld_config
from dld.evaluation import TextSpottingEvaluator
from dld.evaluation.protocols import (
    METRIC_KEYS,
    ImageCounts,
    TextGT,
    TextPrediction,
    evaluate_image,
    match_greedy,
    polygon_iou,
    summarize,
    transcription_match,
)


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def hm(p, r):
    return 0 if p + r == 0 else 2 * p * r / (p + r)


# --------------------------------------------------------------------------------------------- geometry


def test_polygon_iou_basic():
    assert polygon_iou(rect(0, 0, 10, 10), rect(0, 0, 10, 10)) == pytest.approx(1.0)
    assert polygon_iou(rect(0, 0, 10, 10), rect(20, 0, 30, 10)) == 0.0
    # Overlap 7.5 x 10 = 75, union 100 + 100 - 75 = 125.
    assert polygon_iou(rect(20, 0, 30, 10), rect(22.5, 0, 32.5, 10)) == pytest.approx(75 / 125)
    # Point order / orientation does not matter.
    assert polygon_iou(rect(0, 0, 10, 10)[::-1], rect(5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_polygon_iou_self_intersecting_keeps_both_lobes():
    # A bow tie over the square [0,10]^2: two triangles of area 25 each, both inside the square.
    bow_tie = [[0, 0], [10, 10], [10, 0], [0, 10]]
    assert polygon_iou(bow_tie, rect(0, 0, 10, 10)) == pytest.approx(50 / 100)


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        np.zeros((0, 2)),
        [[0, 0], [10, 10]],  # 2 points
        [[0, 0], [5, 5], [10, 10]],  # collinear, zero area
        [[0, 0], [10, float("nan")], [10, 10], [0, 10]],
        [[0, 0], [10, float("inf")], [10, 10], [0, 10]],
        [0, 0, 10, 0, 10],  # odd number of values
        [[3, 3], [3, 3], [3, 3], [3, 3]],
    ],
)
def test_degenerate_polygons_have_zero_iou(bad):
    assert polygon_iou(bad, rect(0, 0, 10, 10)) == 0.0
    assert polygon_iou(rect(0, 0, 10, 10), bad) == 0.0


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    st.lists(st.tuples(*[st.integers(0, 40)] * 4), min_size=0, max_size=6),
    st.lists(st.tuples(*[st.integers(0, 40)] * 4), min_size=0, max_size=6),
)
def test_matching_properties(gt_boxes, pred_boxes):
    gts = [rect(min(a, c), min(b, d), max(a, c) + 1, max(b, d) + 1) for a, b, c, d in gt_boxes]
    preds = [rect(min(a, c), min(b, d), max(a, c) + 1, max(b, d) + 1) for a, b, c, d in pred_boxes]
    res = match_greedy(gts, [False] * len(gts), preds, 0.5)
    # One-to-one, every pair over the threshold, IoU symmetric and in [0, 1].
    assert len({g for g, _ in res.pairs}) == len(res.pairs) == len({p for _, p in res.pairs})
    for g, p in res.pairs:
        assert res.iou[g, p] > 0.5
        assert polygon_iou(preds[p], gts[g]) == pytest.approx(res.iou[g, p])
    assert np.all((res.iou >= 0) & (res.iou <= 1))
    # Greedy: an unmatched GT has no free prediction over the threshold.
    taken = {p for _, p in res.pairs}
    for g in set(range(len(gts))) - {g for g, _ in res.pairs}:
        assert all(res.iou[g, p] <= 0.5 for p in range(len(preds)) if p not in taken)


# --------------------------------------------------------------------------------------------- protocol

GT_WORDS = [
    TextGT(rect(0, 0, 40, 10), "Hello"),
    TextGT(rect(50, 0, 90, 10), "world"),
    TextGT(rect(0, 30, 30, 45), "###", ignore=True),
    TextGT(rect(40, 30, 80, 45), "SALE"),
]


def test_ground_truth_as_predictions_is_perfect():
    preds = [TextPrediction(g.polygon, g.text, 1.0) for g in GT_WORDS]  # the don't care one too
    c = evaluate_image(GT_WORDS, preds, 0.5)
    assert (c.num_gt, c.num_pred, c.num_matched, c.num_correct, c.num_ignored_pred) == (3, 3, 3, 3, 1)
    m = summarize([c, c])
    for k in ("det_precision", "det_recall", "det_hmean", "e2e_precision", "e2e_recall", "e2e_hmean"):
        assert m[k] == 1.0, k
    assert m["word_accuracy"] == 1.0
    assert (m["num_gt"], m["num_pred"], m["num_images"]) == (6, 6, 2)
    assert tuple(m) == METRIC_KEYS


def test_displaced_predictions_score_zero():
    # Each word moved right by more than its width: no overlap at all.
    preds = [TextPrediction(g.polygon + np.array([200.0, 0.0]), g.text, 0.9) for g in GT_WORDS if not g.ignore]
    c = evaluate_image(GT_WORDS, preds, 0.5)
    assert c.num_matched == 0 and c.num_correct == 0 and c.num_pred == 3 and c.num_gt == 3
    m = summarize([c])
    for k in ("det_precision", "det_recall", "det_hmean", "e2e_precision", "e2e_recall", "e2e_hmean"):
        assert m[k] == 0.0, k
    assert m["word_accuracy"] == 0.0


def crafted_case():
    """
    3 GT (G2 is don't care), 4 predictions:
      P0 = G0 exactly, right text                         -> match, correct
      P1 on G1 shifted 2.5 right: IoU 75/125 = 0.6, wrong text -> match, wrong
      P2 on G1 shifted 3.4 right: IoU 66/134 < 0.5, right text, higher score than P1 -> no match (FP)
      P3 on the don't-care G2, IoU 80/100 -> ignored
    """
    gts = [
        TextGT(rect(0, 0, 10, 10), "hello"),
        TextGT(rect(20, 0, 30, 10), "world"),
        TextGT(rect(50, 0, 60, 10), "###", ignore=True),
    ]
    preds = [  # given out of score order on purpose
        TextPrediction(rect(22.5, 0, 32.5, 10), "wrld", 0.7),  # P1
        TextPrediction(rect(50, 0, 60, 8), "xyz", 0.6),  # P3
        TextPrediction(rect(0, 0, 10, 10), "hello", 0.9),  # P0
        TextPrediction(rect(23.4, 0, 33.4, 10), "world", 0.8),  # P2
    ]
    return gts, preds


def test_crafted_case_by_hand():
    gts, preds = crafted_case()
    assert polygon_iou(gts[1].polygon, preds[0].polygon) == pytest.approx((10 - 2.5) * 10 / (200 - 75))
    assert polygon_iou(gts[1].polygon, preds[3].polygon) == pytest.approx(66 / 134)
    assert polygon_iou(gts[2].polygon, preds[1].polygon) == pytest.approx(80 / 100)

    c = evaluate_image(gts, preds, 0.5)
    assert sorted(c.pairs) == [(0, 2, True), (1, 0, False)]
    assert (c.num_gt, c.num_pred, c.num_matched, c.num_correct, c.num_ignored_pred) == (2, 3, 2, 1, 1)

    m = summarize([c])
    det_p, det_r = Fraction(2, 3), Fraction(2, 2)
    e2e_p, e2e_r = Fraction(1, 3), Fraction(1, 2)
    assert m["det_precision"] == pytest.approx(float(det_p))
    assert m["det_recall"] == pytest.approx(float(det_r))
    assert m["det_hmean"] == pytest.approx(float(hm(det_p, det_r)))
    assert m["det_hmean"] == pytest.approx(4 / 5)
    assert m["e2e_precision"] == pytest.approx(float(e2e_p))
    assert m["e2e_recall"] == pytest.approx(float(e2e_r))
    assert m["e2e_hmean"] == pytest.approx(2 / 5)
    assert m["word_accuracy"] == pytest.approx(1 / 2)


def test_counts_are_summed_before_ratios():
    a = ImageCounts(num_gt=1, num_pred=1, num_matched=1, num_correct=1)
    b = ImageCounts(num_gt=3, num_pred=1, num_matched=0, num_correct=0)
    m = summarize([a, b])
    assert m["det_recall"] == pytest.approx(1 / 4)  # not the mean of per-image recalls (1/2)
    assert m["det_precision"] == pytest.approx(1 / 2)


def test_greedy_first_prediction_in_order_takes_the_gt():
    gt = [rect(0, 0, 10, 10)]
    worse, exact = rect(2, 0, 12, 10), rect(0, 0, 10, 10)  # IoU 80/120 and 1
    assert match_greedy(gt, [False], [worse, exact], 0.5).pairs == [(0, 0)]
    assert match_greedy(gt, [False], [exact, worse], 0.5).pairs == [(0, 0)]
    # evaluate_image orders by score: the higher-scored, worse, wrongly read box takes the word.
    gts = [TextGT(gt[0], "cat")]
    c = evaluate_image(gts, [TextPrediction(exact, "cat", 0.6), TextPrediction(worse, "bat", 0.9)], 0.5)
    assert c.pairs == [(0, 1, False)] and c.num_correct == 0 and c.num_pred == 2
    c = evaluate_image(gts, [TextPrediction(exact, "cat", 0.9), TextPrediction(worse, "bat", 0.6)], 0.5)
    assert c.pairs == [(0, 0, True)] and c.num_correct == 1
    # Without score sorting the given (file) order is kept.
    c = evaluate_image(gts, [TextPrediction(exact, "cat", 0.1), TextPrediction(worse, "bat", 0.9)], 0.5,
                       sort_by_score=False)
    assert c.pairs == [(0, 0, True)]


def test_greedy_is_not_a_maximum_matching():
    g0, g1 = rect(0, 0, 10, 10), rect(2, 0, 12, 10)
    p0 = rect(1, 0, 11, 10)  # IoU 9/11 with both GT
    p1 = rect(-2, 0, 8, 10)  # IoU 8/12 with g0, 6/14 with g1
    # g0 takes p0 (first in order); g1 then has no prediction over 0.5, although g0-p1, g1-p0 would be 2 pairs.
    assert match_greedy([g0, g1], [False, False], [p0, p1], 0.5).pairs == [(0, 0)]


def test_e2e_is_case_insensitive():
    assert transcription_match("Hello", "hELLO")
    assert not transcription_match("Hello", "Hallo")
    assert not transcription_match("Hello", "Hello!")
    gts = [TextGT(rect(0, 0, 10, 10), "Hello"), TextGT(rect(20, 0, 30, 10), "STOP")]
    preds = [TextPrediction(rect(0, 0, 10, 10), "hELLO", 0.9), TextPrediction(rect(20, 0, 30, 10), "stoop", 0.9)]
    m = summarize([evaluate_image(gts, preds, 0.5)])
    assert m["det_hmean"] == 1.0
    assert m["e2e_precision"] == pytest.approx(1 / 2) and m["e2e_recall"] == pytest.approx(1 / 2)
    assert m["word_accuracy"] == pytest.approx(1 / 2)


def test_iou_exactly_at_threshold_does_not_match():
    gt, half = rect(0, 0, 10, 10), rect(0, 0, 10, 5)
    assert polygon_iou(gt, half) == 0.5
    assert match_greedy([gt], [False], [half], 0.5).pairs == []
    assert match_greedy([gt], [False], [half], 0.49).pairs == [(0, 0)]
    # Same strictness for the don't-care rule, which is area(pred ∩ dontcare) / area(pred) > 0.5 (not IoU):
    # `half` lies wholly inside the don't-care word and is ignored; a box half inside it is a false positive.
    assert match_greedy([gt], [True], [half], 0.5).pred_ignored[0]
    half_inside = rect(5, 0, 15, 10)
    res = match_greedy([gt], [True], [half_inside], 0.5)
    assert not res.pred_ignored[0]
    c = evaluate_image([TextGT(gt, "###", True)], [TextPrediction(half_inside, "a", 1.0)], 0.5)
    assert (c.num_gt, c.num_pred, c.num_ignored_pred) == (0, 1, 0)


def test_degenerate_predictions_do_not_crash_or_match():
    gt_poly = rect(0, 0, 10, 10)
    gts = [TextGT(gt_poly, "word"), TextGT(rect(20, 0, 30, 10), "###", True)]
    bad = [
        [],
        [[0, 0], [10, 10]],
        [[0, 0], [5, 5], [10, 10]],
        [[0, 0], [10, float("nan")], [10, 10], [0, 10]],
        [[0, 0], [10, 10], [10, 0], [0, 10]],  # bow tie, IoU exactly 0.5 with the GT
        [[20, 0], [20, 0], [20, 0]],  # degenerate, on the don't-care word
    ]
    preds = [TextPrediction(np.asarray(b, dtype=np.float64).reshape(-1, 2), "word", 0.9) for b in bad]
    c = evaluate_image(gts, preds, 0.5)
    # None matches and none is ignored: they are all false positives.
    assert (c.num_gt, c.num_pred, c.num_matched, c.num_ignored_pred) == (1, len(bad), 0, 0)
    m = summarize([c])
    assert m["det_hmean"] == 0.0 and m["e2e_hmean"] == 0.0
    # Degenerate ground truth does not crash either; it counts as a missed word.
    c = evaluate_image([TextGT([[0, 0], [1, 1]], "x")], [TextPrediction(gt_poly, "x", 1.0)], 0.5)
    assert (c.num_gt, c.num_pred, c.num_matched) == (1, 1, 0)


def test_empty_denominators_are_zero():
    m = summarize([])
    assert all(m[k] == 0 for k in METRIC_KEYS)
    # No predictions: precision 0 (not 1), recall 0.
    m = summarize([evaluate_image([TextGT(rect(0, 0, 5, 5), "a")], [], 0.5)])
    assert (m["det_precision"], m["det_recall"], m["det_hmean"], m["word_accuracy"]) == (0, 0, 0, 0)
    # No cared GT but predictions: recall 0 (not 1), precision 0.
    m = summarize([evaluate_image([], [TextPrediction(rect(0, 0, 5, 5), "a", 1.0)], 0.5)])
    assert (m["det_precision"], m["det_recall"], m["e2e_hmean"]) == (0, 0, 0)
    assert (m["num_gt"], m["num_pred"], m["num_images"]) == (0, 1, 1)
    # Only don't-care GT and predictions on it: everything is empty.
    m = summarize([evaluate_image([TextGT(rect(0, 0, 5, 5), "###", True)],
                                  [TextPrediction(rect(0, 0, 5, 5), "a", 1.0)], 0.5)])
    assert (m["num_gt"], m["num_pred"], m["num_ignored_pred"], m["det_hmean"]) == (0, 0, 1, 0)


def test_tuple_inputs_are_accepted():
    c = evaluate_image([(rect(0, 0, 5, 5), "ab", False)], [(rect(0, 0, 5, 5), "AB", 0.7)], 0.5)
    assert c.num_correct == 1


# --------------------------------------------------------------------------------------------- evaluator


def _flat(poly):
    return [float(v) for v in np.asarray(poly).reshape(-1)]


def _anno(poly, text, iscrowd=0):
    poly = np.asarray(poly, dtype=np.float64)
    x0, y0 = poly.min(0)
    x1, y1 = poly.max(0)
    return {
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "bbox_mode": BoxMode.XYWH_ABS,
        "segmentation": [_flat(poly)],
        "category_id": 0,
        "text": text,
        "iscrowd": iscrowd,
    }


@pytest.fixture
def tiny_dataset():
    """Image 1: the crafted case. Image 2: no ground truth. Image 3: one word, nothing predicted."""
    gts, _ = crafted_case()
    dicts = [
        {
            "file_name": "img1.jpg", "height": 100, "width": 100, "image_id": 1,
            "annotations": [
                _anno(gts[0].polygon, "hello"),
                _anno(gts[1].polygon, "world"),
                _anno(gts[2].polygon, "dontcare", iscrowd=1),  # don't care by iscrowd
            ],
        },
        {"file_name": "img2.jpg", "height": 100, "width": 100, "image_id": 2, "annotations": []},
        {
            "file_name": "img3.jpg", "height": 100, "width": 100, "image_id": 3,
            "annotations": [_anno(rect(0, 0, 20, 10), "Open"), _anno(rect(0, 50, 20, 60), "###")],
        },
    ]
    name = f"_test_text_eval_{uuid.uuid4().hex}"
    DatasetCatalog.register(name, lambda: dicts)
    try:
        yield name
    finally:
        DatasetCatalog.remove(name)
        if name in MetadataCatalog.list():
            MetadataCatalog.remove(name)


def _instances(words, boxes=None):
    """words: list of (polygon, text, score, text_score)."""
    inst = Instances((100, 100))
    inst.scores = torch.tensor([w[2] for w in words], dtype=torch.float32)
    inst.pred_polygons = [np.asarray(w[0], dtype=np.float32).reshape(-1, 2) for w in words]
    inst.pred_texts = [w[1] for w in words]
    inst.text_scores = torch.tensor([w[3] for w in words], dtype=torch.float32)
    if boxes is not None:
        inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    return inst


def _run(evaluator):
    _, preds = crafted_case()
    words1 = [(p.polygon, p.text, p.score, 0.5) for p in preds]
    words1.append((rect(0, 0, 10, 10), "hello", 0.3, 0.9))  # below the score threshold: dropped
    words1.append((np.zeros((0, 2)), "box", 0.95, 0.9))  # no polygon, no boxes field: skipped
    inst1 = _instances(words1)
    # Image 2 (no GT): one prediction from a box, since its polygon is empty -> a false positive.
    inst2 = _instances([(np.zeros((0, 2)), "ghost", 0.8, 0.4)], boxes=[[10, 10, 30, 20]])
    evaluator.reset()
    evaluator.process(
        [{"image_id": 1, "file_name": "img1.jpg"}, {"image_id": 2, "file_name": "img2.jpg"}],
        [{"instances": inst1}, {"instances": inst2}],
    )
    evaluator.process([{"image_id": 3, "file_name": "img3.jpg"}], [{"instances": _instances([])}])
    return evaluator.evaluate()


def test_evaluator_end_to_end(tiny_dataset, tmp_path):
    ev = TextSpottingEvaluator(tiny_dataset, output_dir=str(tmp_path), distributed=False)
    results = _run(ev)
    assert list(results) == ["text"]
    m = results["text"]
    # The evaluator scores integer coordinates, truncated as the official script does: P2 becomes
    # [23, 33] x [0, 10], IoU 70/130 > 0.5 with "world", and being scored above P1 it takes that word.
    # Cared GT: 2 (img1) + 0 + 1 (img3) = 3. Cared predictions: 3 (img1) + 1 (img2) = 4. Matched 2, correct 2.
    assert (m["num_gt"], m["num_pred"], m["num_matched"], m["num_correct"]) == (3, 4, 2, 2)
    assert (m["num_images"], m["num_ignored_pred"]) == (3, 1)
    assert m["det_precision"] == pytest.approx(2 / 4)
    assert m["det_recall"] == pytest.approx(2 / 3)
    assert m["det_hmean"] == pytest.approx(hm(2 / 4, 2 / 3))
    assert m["e2e_precision"] == pytest.approx(2 / 4)
    assert m["e2e_recall"] == pytest.approx(2 / 3)
    assert m["e2e_hmean"] == pytest.approx(hm(2 / 4, 2 / 3))
    assert m["word_accuracy"] == pytest.approx(1.0)

    with open(tmp_path / "text_metrics.json") as f:
        on_disk = json.load(f)
    assert on_disk == m
    with open(tmp_path / "text_predictions.json") as f:
        preds = json.load(f)
    by_id = {p["image_id"]: p for p in preds}
    assert set(by_id) == {1, 2, 3}
    img1 = by_id[1]
    assert img1["file_name"] == "img1.jpg"
    assert [w["text"] for w in img1["instances"]] == ["hello", "world", "wrld", "xyz"]  # score order
    assert [w["score"] for w in img1["instances"]] == pytest.approx([0.9, 0.8, 0.7, 0.6])
    assert img1["instances"][0]["text_score"] == pytest.approx(0.5)
    assert np.allclose(img1["instances"][0]["polygon"], rect(0, 0, 10, 10))
    assert np.allclose(by_id[2]["instances"][0]["polygon"], rect(10, 10, 30, 20))
    assert by_id[3]["instances"] == []

    # A second round after reset gives the same numbers (no state leaks between rounds).
    assert _run(ev)["text"] == m


def test_evaluator_thresholds_and_from_config(tiny_dataset):
    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.TEST.TEXT.IOU_THRESHOLD = 0.65
    cfg.TEST.TEXT.SCORE_THRESHOLD = 0.2
    ev = TextSpottingEvaluator.from_config(cfg, tiny_dataset)
    assert isinstance(ev, TextSpottingEvaluator)
    assert (ev.iou_threshold, ev.score_threshold) == (0.65, 0.2)
    # distributed=True works in a single process.
    m = _run(ev)["text"]
    # After integer truncation P2 ([23, 33]) has IoU 70/130 < 0.65 and no longer matches, P1 ([22, 32]) has
    # 80/120 > 0.65 and takes "world" with the wrong text; the 0.3-score copy of "hello" is now kept and is a
    # false positive.
    assert (m["num_gt"], m["num_pred"], m["num_matched"], m["num_correct"]) == (3, 5, 2, 1)
    assert m["det_precision"] == pytest.approx(2 / 5)
    assert m["e2e_recall"] == pytest.approx(1 / 3)


def test_evaluator_ground_truth_as_predictions(tiny_dataset):
    dicts = DatasetCatalog.get(tiny_dataset)
    ev = TextSpottingEvaluator(tiny_dataset, distributed=False)
    ev.reset()
    for d in dicts:
        words = [(np.asarray(a["segmentation"][0]).reshape(-1, 2), a["text"].upper(), 0.99, 1.0)
                 for a in d["annotations"]]
        ev.process([{"image_id": d["image_id"], "file_name": d["file_name"]}], [{"instances": _instances(words)}])
    m = ev.evaluate()["text"]
    for k in ("det_precision", "det_recall", "det_hmean", "e2e_precision", "e2e_recall", "e2e_hmean",
              "word_accuracy"):
        assert m[k] == 1.0, k


def test_evaluator_unknown_image_id_raises(tiny_dataset):
    ev = TextSpottingEvaluator(tiny_dataset, distributed=False)
    ev.reset()
    ev.process([{"image_id": 12345, "file_name": "x.jpg"}], [{"instances": _instances([])}])
    with pytest.raises(ValueError, match="12345"):
        ev.evaluate()


def test_evaluator_empty_round_returns_zeros(tiny_dataset, tmp_path):
    records = []

    class _Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = _Keep(level=logging.WARNING)
    log = logging.getLogger("dld.evaluation.text_evaluator")
    log.addHandler(handler)
    try:
        ev = TextSpottingEvaluator(tiny_dataset, output_dir=str(tmp_path), distributed=False)
        ev.reset()
        m = ev.evaluate()["text"]
    finally:
        log.removeHandler(handler)
    assert all(m[k] == 0 for k in METRIC_KEYS)
    assert any(r.levelno == logging.WARNING for r in records)
    with open(tmp_path / "text_metrics.json") as f:
        assert json.load(f) == m


def test_evaluator_empty_dataset(tmp_path):
    name = f"_test_text_eval_empty_{uuid.uuid4().hex}"
    DatasetCatalog.register(name, lambda: [])
    try:
        ev = TextSpottingEvaluator(name, output_dir=str(tmp_path), distributed=False)
        ev.reset()
        m = ev.evaluate()["text"]
        assert m["num_images"] == 0 and m["det_hmean"] == 0 and not math.isnan(m["e2e_hmean"])
    finally:
        DatasetCatalog.remove(name)


def test_evaluator_unregistered_dataset():
    with pytest.raises(KeyError):
        TextSpottingEvaluator(f"_missing_{uuid.uuid4().hex}")
