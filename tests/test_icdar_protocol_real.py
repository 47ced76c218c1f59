"""
The protocol on the real ICDAR 2015 / Total-Text test ground truth and lexicons (../shared/data/eval).

Ground truth fed back as predictions, what the faithful protocol gives:
* end-to-end without lexicon: exactly 1.0 on both;
* word spotting: 0.973 (IC15) and 0.988 (Total-Text), because only the ground truth is cleaned
  ("SALE!" -> "SALE" no longer equals the prediction "SALE!"), and on IC15 one cared word ("Space", image 360)
  lies inside a word that is don't care in word spotting ("Advertisement Space"), so its prediction is ignored;
* with lexicons it is *not* 1.0 end-to-end: the lexicons hold cleaned words, so a ground-truth word of 3+
  characters without digits that is not in the lexicon in that form ("VICTORIA'S", "H&M", "ST.MARC",
  "#DONT", "AT HIGH", ...) is rewritten to another word. IC15: 61 of 2077 words with the strong or the weak
  lexicon (2016 / 2077), 62 with the generic one ("(Upp" -> "SUPP"); Total-Text full: 2177 / 2215.
"""
import importlib.util
import json
import uuid
from fractions import Fraction

import numpy as np
import pytest
import torch

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Instances

from conftest import REPO_ROOT
from dld.evaluation import TextPrediction, TextSpottingEvaluator, evaluate_protocol, evaluate_submission, read_gt_zip

IC15 = {
    "gt": "eval/gts/gt-icdar2015.zip",
    "strong": "eval/lexicons/icdar2015/strong_lexicon.zip",
    "weak": "eval/lexicons/icdar2015/ch4_test_vocabulary.txt",
    "generic": "eval/lexicons/icdar2015/GenericVocabulary.txt",
}
TOTALTEXT = {"gt": "eval/gts/total-text-gt.zip", "full": "eval/lexicons/total-text/full_lexicons.txt"}


def _paths(shared_data, spec, kinds):
    return str(shared_data / spec["gt"]), {k: str(shared_data / spec[k]) for k in kinds}


def _fed_back(gt_zip):
    gt = read_gt_zip(gt_zip)
    return gt, {k: [TextPrediction(g.polygon, g.text) for g in words] for k, words in gt.items()}


def test_ic15_ground_truth_fed_back(shared_data):
    gt_zip, lexicons = _paths(shared_data, IC15, ["strong", "weak"])
    m = evaluate_submission(gt_zip, gt_zip, lexicons=lexicons)
    assert (m["num_images"], m["num_gt"], m["num_pred"]) == (500, 2077, 2077)
    for k in ("det_precision", "det_recall", "det_hmean", "e2e_precision", "e2e_recall", "e2e_hmean",
              "word_accuracy"):
        assert m[k] == 1.0, k
    assert round(m["ws_hmean"], 3) == 0.973
    assert (m["ws_num_gt"], m["ws_num_pred"]) == (1958, 1957)
    assert m["ws_precision"] == pytest.approx(1905 / 1957) and m["ws_recall"] == pytest.approx(1905 / 1958)
    assert m["e2e_hmean_strong"] == pytest.approx(2016 / 2077)
    assert m["e2e_hmean_weak"] == pytest.approx(2016 / 2077)
    # Word spotting gains from the lexicons: they write the cleaned form ("SALE!" -> "SALE").
    assert m["ws_hmean_strong"] == pytest.approx(float(2 * Fraction(1955, 1957) * Fraction(1955, 1958)
                                                       / (Fraction(1955, 1957) + Fraction(1955, 1958))))


def test_ic15_generic_lexicon(shared_data):
    gt_zip, lexicons = _paths(shared_data, IC15, ["generic"])
    m = evaluate_submission(gt_zip, gt_zip, lexicons=lexicons)
    assert m["e2e_hmean"] == 1.0
    assert m["e2e_precision_generic"] == pytest.approx(2015 / 2077)
    assert m["e2e_recall_generic"] == pytest.approx(2015 / 2077)
    assert m["ws_precision_generic"] == pytest.approx(1941 / 1957)


def test_totaltext_ground_truth_fed_back(shared_data):
    gt_zip, lexicons = _paths(shared_data, TOTALTEXT, ["full"])
    m = evaluate_submission(gt_zip, gt_zip, lexicons=lexicons)
    assert (m["num_images"], m["num_gt"], m["num_pred"]) == (300, 2215, 2215)
    for k in ("det_hmean", "e2e_precision", "e2e_recall", "e2e_hmean"):
        assert m[k] == 1.0, k
    assert round(m["ws_hmean"], 3) == 0.988
    assert (m["ws_num_gt"], m["ws_num_pred"]) == (1823, 1823)
    assert m["ws_hmean"] == pytest.approx(1801 / 1823)
    assert m["e2e_hmean_full"] == pytest.approx(2177 / 2215)
    assert m["ws_hmean_full"] == pytest.approx(1797 / 1823)


def _perturbed(gt, seed):
    """Predictions drawn from the ground truth: jittered float polygons with extra points, some misread,
    some dropped, some false positives, random scores."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, words in gt.items():
        preds = []
        for g in words:
            if rng.random() < 0.1:
                continue
            pts = np.asarray(g.polygon, dtype=np.float64)
            mids = (pts + np.roll(pts, -1, axis=0)) / 2
            poly = np.stack([pts, mids], axis=1).reshape(-1, 2) + rng.uniform(-3, 3, size=(2 * len(pts), 2))
            text = g.text
            r = rng.random()
            if r < 0.2:
                text = text.lower()
            elif r < 0.35 and len(text) > 1:
                i = rng.integers(len(text))
                text = text[:i] + "x" + text[i + 1 :]
            elif r < 0.45:
                text = text + "!"
            preds.append((poly, text, float(rng.uniform(0.5, 1.0))))
        if rng.random() < 0.3:
            x, y = rng.uniform(0, 1000, size=2)
            preds.append((np.array([[x, y], [x + 60, y], [x + 60, y + 20], [x, y + 20]]), "FALSE,ALARM", 0.7))
        out[key] = preds
    return out


def _instances(words):
    inst = Instances((720, 1280))
    inst.scores = torch.tensor([w[2] for w in words], dtype=torch.float64)
    inst.pred_polygons = [w[0] for w in words]
    inst.pred_texts = [w[1] for w in words]
    inst.text_scores = torch.ones(len(words))
    return inst


@pytest.fixture
def registered():
    names = []

    def register(**metadata):
        name = f"_test_icdar_real_{uuid.uuid4().hex}"
        DatasetCatalog.register(name, lambda: [])
        MetadataCatalog.get(name).set(evaluator_type="text", **metadata)
        names.append(name)
        return name

    yield register
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def _load_tool():
    path = REPO_ROOT / "tools" / "evaluate_submission.py"
    spec = importlib.util.spec_from_file_location("evaluate_submission_tool", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dataset", ["icdar2015", "totaltext"])
def test_submission_round_trip_matches_in_memory(shared_data, registered, tmp_path, dataset):
    if dataset == "icdar2015":
        gt_zip, lexicons = _paths(shared_data, IC15, ["strong", "weak"])
        fmt, name_of = "quad", "img_{}.jpg"
    else:
        gt_zip, lexicons = _paths(shared_data, TOTALTEXT, ["full"])
        fmt, name_of = "polygon", "img{}.jpg"
    lexicons_with_missing = dict(lexicons, generic=str(tmp_path / "absent.txt"))  # skipped with a warning
    name = registered(eval_gt_zip=gt_zip, lexicons=lexicons_with_missing, polygon_format=fmt)
    gt = read_gt_zip(gt_zip)
    preds = _perturbed(gt, seed=0)

    ev = TextSpottingEvaluator(name, output_dir=str(tmp_path), score_threshold=0.0, distributed=False)
    ev.reset()
    for key, words in preds.items():
        # image_id is not the image number: the number comes from the file name.
        ev.process([{"image_id": f"id{key}", "file_name": f"/data/test/{name_of.format(key)}"}],
                   [{"instances": _instances(words)}])
    in_memory = ev.evaluate()["text"]
    assert "e2e_hmean_generic" not in in_memory
    assert 0.3 < in_memory["e2e_hmean"] < 0.95 and in_memory["num_images"] == len(gt)
    with open(tmp_path / "text_metrics.json") as f:
        assert json.load(f) == in_memory

    sub = tmp_path / "submission.zip"
    assert evaluate_submission(gt_zip, sub, lexicons=lexicons, polygon_format=fmt) == in_memory
    out = tmp_path / "tool_metrics.json"
    args = ["--gt", gt_zip, "--pred", str(sub), "--output", str(out)]
    for kind, path in lexicons.items():
        args += ["--lexicon", f"{kind}={path}"]
    _load_tool().main(args)
    with open(out) as f:
        assert json.load(f) == in_memory


def test_evaluator_gt_fed_back_through_the_zip(shared_data, registered, tmp_path):
    gt_zip, _ = _paths(shared_data, TOTALTEXT, [])
    name = registered(eval_gt_zip=gt_zip, polygon_format="polygon")
    gt, fed = _fed_back(gt_zip)
    ev = TextSpottingEvaluator(name, output_dir=str(tmp_path), score_threshold=0.0, distributed=False)
    ev.reset()
    for key, words in fed.items():
        ev.process([{"image_id": key, "file_name": f"img{key}.jpg"}],
                   [{"instances": _instances([(w.polygon, w.text, 1.0) for w in words])}])
    m = ev.evaluate()["text"]
    assert m["e2e_hmean"] == 1.0 and round(m["ws_hmean"], 3) == 0.988
    assert m == evaluate_protocol(gt, fed)
