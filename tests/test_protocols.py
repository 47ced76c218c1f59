"""Rules of the full ICDAR end-to-end protocol: tolerance, word spotting, don't care, lexicons, submissions."""
import zipfile
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dld.evaluation.lexicon import Lexicon, load_lexicons, nearest_words, read_per_image_lexicons, read_word_list
from dld.evaluation.lexicon import should_correct
from dld.evaluation.protocols import (
    METRIC_KEYS,
    TextGT,
    TextPrediction,
    evaluate_image,
    evaluate_protocol,
    match_greedy,
    metrics_table,
    polygon_iou,
    transcription_match,
    word_spotting_transcription,
)
from dld.evaluation.submission import (
    evaluate_submission,
    guess_polygon_format,
    parse_line,
    polygon_to_quad,
    read_gt_zip,
    read_submission_zip,
    submission_polygon,
    to_submission_words,
    write_submission_zip,
)


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def hm(p, r):
    return 0 if p + r == 0 else 2 * p * r / (p + r)


# --------------------------------------------------------------------------------------------- end-to-end text


@pytest.mark.parametrize(
    "gt, det",
    [
        ("Hello", "hELLO"),
        ("HELLO!", "hello"),  # one special character at the end of the GT
        ("(HELLO", "HELLO"),  # ... at the start
        ("(HELLO)", "HELLO"),  # ... at both ends
        ('"QUOTE"', "quote"),
        ("·DOT", "DOT"),
        ("[X]", "X"),
        ("/PATH/", "PATH"),
        ("IT'", "IT"),
        (" SPACE", "SPACE"),
        ("((HELLO))", "(HELLO)"),  # one removed at each end
        ("HELLO!", "HELLO!"),  # equal
        ("!", ""),
    ],
)
def test_special_character_tolerance_passes(gt, det):
    assert transcription_match(gt, det)


@pytest.mark.parametrize(
    "gt, det",
    [
        ("HELLO", "HELLO!"),  # nothing is removed from the prediction
        ("HELLO!!", "HELLO"),  # only one character per end
        ("((HELLO))", "HELLO"),
        ("HEL.LO", "HELLO"),  # not inside the word
        ("HELLO-", "HELLO"),  # '-' is not special
        ("HELLO;", "HELLO"),  # ';' is not in the offline set
        ("#HELLO", "HELLO"),
        ("HELLO", "HALLO"),
        ("", "A"),
    ],
)
def test_special_character_tolerance_fails(gt, det):
    assert not transcription_match(gt, det)


# --------------------------------------------------------------------------------------------- word spotting


@pytest.mark.parametrize(
    "gt, cleaned",
    [
        ("Hello", "Hello"),
        ("HELLO!", "HELLO"),
        ("(HELLO)", "HELLO"),
        ("VICTORIA'S", "VICTORIA"),
        ("there's", "there"),
        ("-ABC-", "ABC"),
        ("--ABC", "ABC"),
        ("A-B", "A-B"),
        ("CAFÉ", "CAFÉ"),
        ("ΑΒΓ", "ΑΒΓ"),  # Greek
        ("Straße", "Straße"),
        ("ABC.", "ABC"),
        ('"ABC"', "ABC"),
        # failing the dictionary test: don't care
        ("AB", None),  # too short
        ("HI!", None),  # short after cleaning
        ("it's", None),
        ("don't", None),  # inner apostrophe becomes an inner space
        ("NEW YORK", None),
        ("ST.MARC", None),
        ("ABC1", None),  # digits
        ("2015", None),
        ("A×B", None),
        ("AB÷C", None),
        ("H&M", None),
        ("@SMRT", None),
        ("中文字", None),
        ("Привет", None),  # Cyrillic
        ("", None),
    ],
)
def test_word_spotting_dictionary_test(gt, cleaned):
    assert word_spotting_transcription(gt) == cleaned


def test_word_spotting_compares_cleaned_gt_with_raw_prediction():
    gts = [TextGT(rect(0, 0, 40, 10), "HELLO!"), TextGT(rect(50, 0, 90, 10), "AB"), TextGT(rect(0, 20, 40, 30), "Sale")]
    preds = [TextPrediction(rect(0, 0, 40, 10), "HELLO!"), TextPrediction(rect(50, 0, 90, 10), "AB"),
             TextPrediction(rect(0, 20, 40, 30), "SALE")]
    ws = evaluate_image(gts, preds, sort_by_score=False, word_spotting=True)
    # "AB" is don't care in word spotting, and so is its prediction (wholly inside it).
    assert (ws.num_gt, ws.num_pred, ws.num_ignored_pred, ws.num_matched) == (2, 2, 1, 2)
    # The GT is cleaned to "HELLO" but the prediction is not: the ground truth itself is not correct.
    assert ws.pairs == [(0, 0, False), (2, 2, True)]
    e2e = evaluate_image(gts, preds, sort_by_score=False)
    assert (e2e.num_gt, e2e.num_correct) == (3, 3)
    assert evaluate_image(gts[:1], [TextPrediction(rect(0, 0, 40, 10), "hello")], word_spotting=True).num_correct == 1


# --------------------------------------------------------------------------------------------- don't care


def test_dont_care_area_rule():
    dc = rect(0, 0, 10, 10)
    inside_60 = rect(4, 0, 14, 10)  # 60 % of its area inside; IoU only 60/140
    inside_40 = rect(6, 0, 16, 10)  # 40 %
    assert polygon_iou(dc, inside_60) < 0.5
    res = match_greedy([dc], [True], [inside_60, inside_40])
    assert res.pred_ignored.tolist() == [True, False]
    c = evaluate_image([TextGT(dc, "###", True)], [TextPrediction(inside_60, "x"), TextPrediction(inside_40, "y")])
    assert (c.num_gt, c.num_pred, c.num_ignored_pred) == (0, 1, 1)
    # A small prediction inside a large don't-care region is ignored whatever its IoU.
    assert match_greedy([rect(0, 0, 100, 100)], [True], [rect(10, 10, 20, 20)]).pred_ignored[0]
    # The threshold is a parameter (the offline script of some repositories ties it to the IoU threshold).
    assert not match_greedy([dc], [True], [inside_60], area_precision_threshold=0.7).pred_ignored[0]


def test_dont_care_prediction_cannot_match_a_cared_word():
    # The prediction lies 80 % on the don't-care word and has IoU 0.6 with the cared word beside it.
    gts = [TextGT(rect(0, 0, 10, 10), "###", True), TextGT(rect(2, 0, 12, 10), "word")]
    c = evaluate_image(gts, [TextPrediction(rect(2, 0, 12, 10), "word")])
    assert (c.num_gt, c.num_pred, c.num_matched, c.num_ignored_pred) == (1, 0, 0, 1)


def test_zero_area_prediction_on_dont_care_is_a_false_positive():
    # As in the official script (area 0 -> precision 0): ICDAR 2013 image 50 has such a "###" box.
    gts = [TextGT(rect(0, 0, 10, 10), "###", True)]
    c = evaluate_image(gts, [TextPrediction([[2, 2], [5, 2], [5, 2], [2, 2]], "###")])
    assert (c.num_pred, c.num_ignored_pred) == (1, 0)


# --------------------------------------------------------------------------------------------- thresholds


def test_iou_threshold_changes_a_match():
    gt, pred = rect(0, 0, 10, 10), rect(6, 0, 16, 10)  # IoU 40/160 = 0.25
    assert polygon_iou(gt, pred) == pytest.approx(0.25)
    gts, preds = {1: [TextGT(gt, "word")]}, {1: [TextPrediction(pred, "word")]}
    assert evaluate_protocol(gts, preds, iou_threshold=0.5)["e2e_hmean"] == 0.0
    m = evaluate_protocol(gts, preds, iou_threshold=0.1)
    assert m["e2e_hmean"] == 1.0 and m["det_hmean"] == 1.0


def test_integer_truncation_like_the_official_script():
    gt, pred = rect(0, 0, 10, 10), rect(3.4, 0, 13.4, 10)  # IoU 66/134 < 0.5; truncated: 70/130 > 0.5
    gts, preds = {1: [TextGT(gt, "a")]}, {1: [TextPrediction(pred, "a")]}
    assert evaluate_protocol(gts, preds)["num_matched"] == 1
    assert evaluate_protocol(gts, preds, integer_coordinates=False)["num_matched"] == 0
    # Truncation is toward zero (like numpy's int32 cast), also for negative coordinates.
    gt_neg, pred_neg = rect(-10, 0, 0, 10), rect(-13.4, 0, -3.4, 10)  # truncated: [-13, -3] -> IoU 70/130
    assert evaluate_protocol({1: [TextGT(gt_neg, "a")]}, {1: [TextPrediction(pred_neg, "a")]})["num_matched"] == 1


def test_file_order_not_score_order_by_default():
    gts = {1: [TextGT(rect(0, 0, 10, 10), "cat")]}
    preds = {1: [TextPrediction(rect(1, 0, 11, 10), "bat", 0.1), TextPrediction(rect(0, 0, 10, 10), "cat", 0.9)]}
    assert evaluate_protocol(gts, preds)["num_correct"] == 0  # the first line takes the word
    assert evaluate_protocol(gts, preds, sort_by_score=True)["num_correct"] == 1


def test_unknown_prediction_image_raises():
    with pytest.raises(ValueError, match="no ground truth"):
        evaluate_protocol({1: []}, {2: []})


# --------------------------------------------------------------------------------------------- lexicons


@pytest.mark.parametrize(
    "word, expected",
    [("abc", True), ("ab", False), ("", False), ("ab1", False), ("A+B", False), ("+++", False), ("HELLO!", True),
     ("ÉTÉ", True), ("2nd", False)],
)
def test_should_correct(word, expected):
    assert should_correct(word) == expected


def test_nearest_word_rule():
    lexicon = ["Hello", "WORLD", "hallo", "help"]
    # Case-insensitive distance, the lexicon's case is written back.
    assert nearest_words(["HELLO", "world", "wrld"], lexicon) == ["Hello", "WORLD", "WORLD"]
    # Ties: "hxllo" is at distance 1 from "Hello" and "hallo": the first in file order wins.
    assert nearest_words(["hxllo"], lexicon) == ["Hello"]
    assert nearest_words(["hxllo"], lexicon[::-1]) == ["hallo"]
    # No threshold: a far word is still replaced.
    assert nearest_words(["zzzzzzzzzz"], ["abc", "xyz"]) == ["xyz"]
    lex = Lexicon("weak", words=lexicon)
    out = lex.correct({1: ["hxllo", "ab", "he1lo", "h+lo", "wrld"], 2: []})
    assert out == {1: ["Hello", "ab", "he1lo", "h+lo", "WORLD"], 2: []}


def test_nearest_word_ties_with_duplicates_and_many_equal_candidates():
    # 500 candidates all at distance 1 from the query, plus an upper/lower duplicate of the exact word late.
    lexicon = [f"AB{chr(0x100 + i)}" for i in range(500)] + ["abc", "ABC"]
    assert nearest_words(["ABX"], lexicon) == [lexicon[0]]
    assert nearest_words(["abc"], lexicon) == ["abc"]
    assert nearest_words(["ABC"], lexicon) == ["abc"]


def _levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    st.lists(st.text("abcAB", min_size=3, max_size=6), min_size=1, max_size=5),
    st.lists(st.text("abcABC", min_size=1, max_size=6), min_size=1, max_size=12),
)
def test_nearest_word_matches_brute_force_first_minimum(queries, lexicon):
    expected = []
    for q in queries:
        d = [_levenshtein(q.upper(), w.upper()) for w in lexicon]
        expected.append(lexicon[d.index(min(d))])
    assert nearest_words(queries, lexicon) == expected


def test_per_image_lexicons_from_dir_and_zip(tmp_path):
    d = tmp_path / "strong"
    d.mkdir()
    (d / "voc_img_1.txt").write_bytes("\ufeffCAT\r\n\r\n  DOG \r\n".encode("utf-8"))
    (d / "voc_img_2.txt").write_text("ÉTÉ\n", encoding="utf-8")
    (d / "notes.txt").write_text("ignored\n")
    assert read_per_image_lexicons(d) == {1: ["CAT", "DOG"], 2: ["ÉTÉ"]}
    z = tmp_path / "strong_lexicon.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("strong_lexicon/", "")
        zf.writestr("strong_lexicon/voc_img_1.txt", "CAT\r\nDOG\r\n")
        zf.writestr("strong_lexicon/voc_img_2.txt", "ÉTÉ\r\n".encode("utf-8"))
    assert read_per_image_lexicons(z) == {1: ["CAT", "DOG"], 2: ["ÉTÉ"]}
    lex = Lexicon.from_path("strong", z)
    # Image 3 has no lexicon: its words are kept.
    assert lex.correct({1: ["cot", "dg"], 2: ["ete"], 3: ["xyz"]}) == {1: ["CAT", "dg"], 2: ["ÉTÉ"], 3: ["xyz"]}
    (tmp_path / "weak.txt").write_text("\ufeffONE\n\nTWO  \n", encoding="utf-8")
    assert read_word_list(tmp_path / "weak.txt") == ["ONE", "TWO"]
    # Missing files are skipped; the known kinds come in report order.
    lexicons = load_lexicons({"generic": str(tmp_path / "absent.txt"), "weak": str(tmp_path / "weak.txt"),
                              "strong": str(z)})
    assert [lex.kind for lex in lexicons] == ["strong", "weak"]


def test_hand_computed_case_with_lexicons():
    """
    Image 1 (strong lexicon HELLO, WORLD, SALE), image 2 (strong lexicon OPEN, SHOP); weak lexicon for all.
      img1: G0 "Hello!" <- P0 "helo"     none: wrong; lexicons: HELLO -> "Hello!" minus "!" = HELLO, right
            G1 "world"  <- P1 "world"    right everywhere
            G2 "###"    <- P2 "xx" (ignored: inside the don't-care word)
            P3 "SALE" in the void: false positive
      img2: G3 "OPEN"   <- P4 "0PEN"     digit: never corrected, wrong everywhere
            G4 "SHOP"   <- P5 "SHIP"     none: wrong; strong: SHOP right; weak (SHIP is a weak word): wrong
            G5 "AB"     (missed; don't care in word spotting)
    """
    gts = {
        1: [TextGT(rect(0, 0, 40, 10), "Hello!"), TextGT(rect(50, 0, 90, 10), "world"),
            TextGT(rect(0, 50, 40, 60), "###", True)],
        2: [TextGT(rect(0, 0, 40, 10), "OPEN"), TextGT(rect(50, 0, 90, 10), "SHOP"), TextGT(rect(0, 30, 20, 40), "AB")],
    }
    preds = {
        1: [TextPrediction(rect(0, 0, 40, 10), "helo"), TextPrediction(rect(50, 0, 90, 10), "world"),
            TextPrediction(rect(5, 50, 35, 60), "xx"), TextPrediction(rect(100, 100, 140, 110), "SALE")],
        2: [TextPrediction(rect(0, 0, 40, 10), "0PEN"), TextPrediction(rect(50, 0, 90, 10), "SHIP")],
    }
    strong = Lexicon("strong", per_image={1: ["HELLO", "WORLD", "SALE"], 2: ["OPEN", "SHOP"]})
    weak = Lexicon("weak", words=["HELLO", "WORLD", "SALE", "OPEN", "SHOP", "SHIP"])
    m = evaluate_protocol(gts, preds, lexicons=[strong, weak])
    # Cared: 5 GT, 5 predictions (P2 ignored), 4 matched pairs.
    assert (m["num_gt"], m["num_pred"], m["num_matched"], m["num_ignored_pred"]) == (5, 5, 4, 1)
    assert m["det_precision"] == pytest.approx(4 / 5) and m["det_recall"] == pytest.approx(4 / 5)
    assert m["num_correct"] == 1 and m["e2e_hmean"] == pytest.approx(1 / 5)  # world only
    assert m["word_accuracy"] == pytest.approx(1 / 4)
    assert m["e2e_precision_strong"] == pytest.approx(3 / 5)  # Hello!, world, SHOP
    assert m["e2e_recall_strong"] == pytest.approx(3 / 5)
    assert m["e2e_hmean_weak"] == pytest.approx(2 / 5)  # Hello!, world
    # Word spotting: "AB" becomes don't care -> 4 cared GT; "Hello!" is cleaned to "Hello".
    assert (m["ws_num_gt"], m["ws_num_pred"]) == (4, 5)
    assert m["ws_precision"] == pytest.approx(1 / 5) and m["ws_recall"] == pytest.approx(1 / 4)
    assert m["ws_hmean"] == pytest.approx(hm(Fraction(1, 5), Fraction(1, 4)))
    assert m["ws_precision_strong"] == pytest.approx(3 / 5) and m["ws_recall_strong"] == pytest.approx(3 / 4)
    assert m["ws_recall_weak"] == pytest.approx(2 / 4)
    # Key order: the legacy keys first, then lexicons, then word spotting.
    assert tuple(m)[: len(METRIC_KEYS)] == METRIC_KEYS
    assert list(m)[len(METRIC_KEYS):len(METRIC_KEYS) + 6] == [
        "e2e_precision_strong", "e2e_recall_strong", "e2e_hmean_strong",
        "e2e_precision_weak", "e2e_recall_weak", "e2e_hmean_weak",
    ]
    table = metrics_table(m)
    assert "end-to-end (strong)" in table and "word spotting (weak)" in table


# --------------------------------------------------------------------------------------------- submissions


def test_polygon_to_quad_is_clockwise_from_top_left():
    box = rect(10, 20, 50, 40)
    for pts in (box, box[::-1], np.roll(box, 2, axis=0)):
        assert np.allclose(polygon_to_quad(pts), box)
    # A curved polygon becomes its minimum-area rectangle, written with integer, clockwise points.
    curve = np.array([[0, 0], [20, -5], [40, 0], [40, 10], [20, 5], [0, 10]], dtype=np.float64)
    quad = submission_polygon(curve, "quad")
    assert quad.dtype == np.int64 and quad.tolist() == [[0, -5], [40, -5], [40, 10], [0, 10]]
    # Rotated rectangle: clockwise (positive shoelace in image coordinates), starts at min x + y.
    th = np.deg2rad(30)
    rot = (box - 30) @ np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]]) + 100
    q = polygon_to_quad(rot[::-1])
    x, y = q[:, 0], q[:, 1]
    assert np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y) > 0
    assert np.argmin(x + y) == 0
    # Polygons keep their points, truncated toward zero, reversed when counter-clockwise.
    expected = [[0, 0], [20, -4], [40, 0], [40, 10], [20, 5], [0, 10]]  # -5 + 0.7 = -4.3 -> -4
    assert submission_polygon(curve[::-1] + 0.7, "polygon").tolist() == expected


def test_parse_line_formats():
    pts, text = parse_line("1,2,3,4,5,6,7,8,a,b,c", "quad")
    assert pts.shape == (4, 2) and text == "a,b,c"
    pts, text = parse_line("1,2,3,4,5,6,7,8,12,34,AB", "quad")
    assert text == "12,34,AB"
    pts, text = parse_line("328,276,357,276,386,276,386,303,357,303,328,303,558", "polygon")
    assert pts.shape == (6, 2) and text == "558"
    pts, text = parse_line("1,2,3,4,5,6,", None)
    assert pts.shape == (3, 2) and text == ""
    with pytest.raises(ValueError):
        parse_line("1,2,3,4,word", None)
    with pytest.raises(ValueError):
        parse_line("1,2,3,x,5,6,7,8,word", "quad")


def test_submission_round_trip_and_gt_reading(tmp_path):
    gt_zip = tmp_path / "gt.zip"
    with zipfile.ZipFile(gt_zip, "w") as zf:
        zf.writestr("gt_img_7.txt", "\ufeff0,0,40,0,40,10,0,10,Hello,World\r\n50,0,90,0,90,10,50,10,###\r\n".encode())
        zf.writestr("gt_img_8.txt", "")
    assert guess_polygon_format(gt_zip) == "quad"
    gt = read_gt_zip(gt_zip)
    assert sorted(gt) == [7, 8] and gt[8] == []
    assert [(g.text, g.ignore) for g in gt[7]] == [("Hello,World", False), ("###", True)]

    preds = {7: [TextPrediction(rect(0.6, 0.2, 40.9, 10.7)[::-1], "hello,world", 0.9),
                 TextPrediction(rect(52, 1, 88, 9), "zz", 0.8)],
             8: []}
    out = tmp_path / "sub" / "submission.zip"
    write_submission_zip(out, preds, "quad")
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["res_img_7.txt", "res_img_8.txt"]
        assert zf.read("res_img_7.txt").decode() == "0,0,40,0,40,10,0,10,helloworld\n52,1,88,1,88,9,52,9,zz\n"
        assert zf.read("res_img_8.txt") == b""
    back = read_submission_zip(out, "quad")
    written = to_submission_words(preds[7], "quad")
    assert [w.text for w in back[7]] == [w.text for w in written] == ["helloworld", "zz"]
    assert all(np.array_equal(a.polygon, b.polygon) for a, b in zip(back[7], written))
    # "Hello,World" minus nothing != "helloworld": the comma removal of the writer is not forgiven.
    m = evaluate_submission(gt_zip, out)
    assert (m["num_gt"], m["num_pred"], m["num_matched"], m["num_correct"], m["num_ignored_pred"]) == (1, 1, 1, 0, 1)
    assert m == evaluate_protocol(gt, {k: written if k == 7 else [] for k in preds})
