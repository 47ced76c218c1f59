"""The cost of each inference in the models' outputs (fixed test scale, GFLOPs, time) and the evaluator's metrics."""
import json
import logging
import uuid

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from detectron2.data import DatasetCatalog
from detectron2.evaluation.testing import flatten_results_dict, print_csv_format
from detectron2.modeling import build_model
from detectron2.structures import Instances

import dld.modeling.cost as cost
import dld.utils.timing as timing
from dld.evaluation import TextSpottingEvaluator
from dld.modeling import DLDTextSpotter, TextSpotterRCNN
from dld.modeling.cost import count_selector_flops, flops_breakdown
from dld.modeling.lowres import lowres_size
from conftest import small_dld_cfg

pytestmark = pytest.mark.usefixtures("single_thread")

NUM_DETECTIONS = 10  # MODEL.DLD.COST.NUM_DETECTIONS, the FLOPs count's fixed detections


def _spotter(cfg, scale: float) -> TextSpotterRCNN:
    cfg = cfg.clone()
    cfg.TEST.FIXED_SCALE = scale
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0  # an untrained model: keep every detection
    torch.manual_seed(0)
    return build_model(cfg).eval()


def _image(seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(3, 128, 160) * 255


def test_fixed_scale_runs_the_resized_image_and_maps_words_back(small_cfg):
    full, half = _spotter(small_cfg, 1.0), _spotter(small_cfg, 0.5)
    image = _image()
    # Bilinear resizing commutes with the per-channel normalisation, so the full-scale model on the image
    # resized beforehand must give what the half-scale model gives on the original.
    resized = F.interpolate(image[None], size=(64, 80), mode="bilinear", align_corners=False)[0]
    with torch.no_grad():
        out_half = half([{"image": image, "height": 256, "width": 320}])[0]
        out_ref = full([{"image": resized, "height": 256, "width": 320}])[0]
        out_full = full([{"image": image, "height": 256, "width": 320}])[0]
        no_size = half([{"image": image}])[0]["instances"]

    a, b = out_half["instances"], out_ref["instances"]
    assert a.image_size == (256, 320) and len(a) == len(b) > 0
    torch.testing.assert_close(a.pred_boxes.tensor, b.pred_boxes.tensor, atol=1e-2, rtol=0)
    assert a.pred_texts == b.pred_texts
    assert a.pred_boxes.tensor[:, 2].max() > 200 and a.pred_boxes.tensor[:, 3].max() > 160  # the whole image
    # Without "height"/"width" the words are in the preprocessed image's coordinates, not the half-size input's.
    assert no_size.image_size == (128, 160) and no_size.pred_boxes.tensor[:, 2].max() > 100

    assert out_half["selected_scale"] == 0.5 and out_full["selected_scale"] == 1.0
    for out, size in ((out_half, (64, 80)), (out_full, (128, 160))):
        parts = flops_breakdown(full, size, num_detections=NUM_DETECTIONS)
        assert out["gflops_backbone"] == pytest.approx(parts["backbone"] + parts["rpn"])
        # The whole model at the image's real RoI counts: at least its detections' heads on top.
        assert out["gflops"] > out["gflops_backbone"]
    assert out_half["gflops_backbone"] < 0.35 * out_full["gflops_backbone"]  # s² = 0.25, plus padding
    assert out_half["inference_time_s"] > 0


def test_fixed_scale_flops_are_counted_once_per_size(small_cfg, flop_analyses):
    calls = flop_analyses
    model = _spotter(small_cfg, 0.5)
    with torch.no_grad():
        first = model([{"image": _image(1)}, {"image": _image(2)}])
        counted = len(calls)
        second = model([{"image": _image(3)}])
    # The size once in all and once for backbone + RPN alone, the heads' cost per proposal and per detection once.
    assert counted == len(calls) == 4
    assert first[0]["gflops_backbone"] == first[1]["gflops_backbone"] == second[0]["gflops_backbone"]


def test_inference_time_is_the_batch_wall_time_per_image(small_cfg, monkeypatch):
    model = _spotter(small_cfg, 1.0)
    ticks = iter([10.0, 13.0])
    monkeypatch.setattr(timing, "perf_counter", lambda: next(ticks))
    with torch.no_grad():
        outputs = model([{"image": _image(1)}, {"image": _image(2)}])
    assert [o["inference_time_s"] for o in outputs] == [1.5, 1.5]


def test_synchronized_clock_waits_for_the_cuda_device(monkeypatch):
    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    timing.synchronized_clock(torch.device("cpu"))
    assert synced == []
    timing.synchronized_clock(torch.device("cuda", 1))
    assert synced == [torch.device("cuda", 1)]


@pytest.fixture
def flop_analyses(monkeypatch) -> list:
    """One entry per fvcore FlopCountAnalysis built while the test runs."""
    calls = []

    class _Counting(cost.FlopCountAnalysis):
        def __init__(self, *args, **kwargs):
            calls.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(cost, "FlopCountAnalysis", _Counting)
    return calls


@pytest.fixture
def dld_model(small_cfg, tmp_path) -> DLDTextSpotter:
    cfg = small_dld_cfg(small_cfg)
    torch.manual_seed(0)
    return build_model(cfg).eval()


def test_dld_outputs_carry_selector_plus_student_flops_at_the_chosen_scale(dld_model, flop_analyses):
    calls = flop_analyses
    with torch.no_grad():
        outputs = dld_model([{"image": _image(1), "height": 256, "width": 320}, {"image": _image(2)}])
        counted = len(calls)
        dld_model([{"image": _image(2)}, {"image": _image(1)}])
    # The selector once, the student twice per chosen size (in all; backbone + RPN), its heads per RoI once.
    assert 5 <= counted <= 7 and len(calls) == counted
    selector = count_selector_flops(dld_model.selector, (128, 160))
    for out in outputs:
        s = out["selected_scale"]
        assert s in (0.8, 0.5)
        parts = flops_breakdown(dld_model.student, lowres_size(128, 160, s), num_detections=NUM_DETECTIONS)
        assert out["gflops_backbone"] == pytest.approx(selector + parts["backbone"] + parts["rpn"])
        assert out["gflops"] > out["gflops_backbone"]
        assert out["inference_time_s"] > 0
    assert outputs[0]["inference_time_s"] == outputs[1]["inference_time_s"]
    assert outputs[1]["instances"].image_size == (128, 160)


def test_dld_rejects_a_fixed_test_scale(small_cfg):
    cfg = small_cfg.clone()
    cfg.MODEL.META_ARCHITECTURE = "DLDTextSpotter"
    cfg.TEST.FIXED_SCALE = 0.5
    with pytest.raises(ValueError, match="FIXED_SCALE"):
        build_model(cfg)


# --------------------------------------------------------------------------------------------- evaluator


@pytest.fixture
def three_images():
    square = [0, 0, 20, 0, 20, 10, 0, 10]
    dicts = [
        {
            "file_name": f"img_{i}.jpg", "height": 100, "width": 100, "image_id": i,
            "annotations": [{"bbox": [0, 0, 20, 10], "bbox_mode": 0, "segmentation": [square], "category_id": 0,
                             "text": "word", "iscrowd": 0}],
        }
        for i in (1, 2, 3)
    ]
    name = f"_test_cost_columns_{uuid.uuid4().hex}"
    DatasetCatalog.register(name, lambda: dicts)
    yield name
    DatasetCatalog.remove(name)


def _word() -> Instances:
    inst = Instances((100, 100))
    inst.scores = torch.tensor([0.9])
    inst.pred_polygons = [np.array([[0, 0], [20, 0], [20, 10], [0, 10]], dtype=np.float32)]
    inst.pred_texts = ["word"]
    inst.text_scores = torch.tensor([0.8])
    return inst


def _evaluate(name, costs, output_dir=None):
    ev = TextSpottingEvaluator(name, output_dir=output_dir, distributed=False)
    ev.reset()
    for i, c in zip((1, 2, 3), costs):
        ev.process([{"image_id": i, "file_name": f"img_{i}.jpg"}], [{"instances": _word(), **c}])
    return ev.evaluate()


COST_KEYS = ("mean_scale", "gflops", "images_per_s")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_evaluator_reports_mean_scale_flops_speed_and_scale_counts(three_images, tmp_path, caplog):
    costs = [
        {"selected_scale": 0.5, "gflops": 1.0, "inference_time_s": 0.1},
        {"selected_scale": 0.8, "gflops": 2.0, "inference_time_s": 0.2},
        {"selected_scale": 0.5, "gflops": 4.5, "inference_time_s": 0.2},
    ]
    records = _Records()
    log = logging.getLogger("dld.evaluation.text_evaluator")
    log.addHandler(records)
    try:
        with caplog.at_level(logging.INFO, logger=log.name):  # the level only: "dld" may not propagate
            results = _evaluate(three_images, costs, str(tmp_path))
    finally:
        log.removeHandler(records)
    m = results["text"]
    assert m["e2e_hmean"] == 1.0
    assert m["mean_scale"] == pytest.approx(0.6)
    assert m["gflops"] == pytest.approx(2.5)
    assert m["images_per_s"] == pytest.approx(3 / 0.5)
    assert (m["scale_count_0.8"], m["scale_count_0.5"]) == (1, 2)
    assert json.loads((tmp_path / "text_metrics.json").read_text()) == m
    predictions = json.loads((tmp_path / "text_predictions.json").read_text())
    assert [p["gflops"] for p in predictions] == [1.0, 2.0, 4.5]
    logged = "\n".join(records.messages)
    assert "images/s" in logged and "6.00" in logged and "0.5: 2" in logged
    # Detectron2's result printing and the EvalHook's flattening take every value as a number.
    print_csv_format(results)
    assert all(isinstance(float(v), float) for v in flatten_results_dict(results).values())


def test_evaluator_omits_cost_metrics_the_outputs_do_not_carry(three_images):
    m = _evaluate(three_images, [{}, {}, {}])["text"]
    assert not any(k in m for k in COST_KEYS) and not any(k.startswith("scale_count_") for k in m)
    # A value missing for one image (or None) leaves its metric out; the complete ones are reported.
    partial = [
        {"selected_scale": 0.5, "gflops": 1.0},
        {"selected_scale": 0.5, "gflops": None, "inference_time_s": 0.2},
        {"selected_scale": 0.5, "gflops": 3.0, "inference_time_s": 0.2},
    ]
    m = _evaluate(three_images, partial)["text"]
    assert m["mean_scale"] == 0.5 and m["scale_count_0.5"] == 3
    assert "gflops" not in m and "images_per_s" not in m
