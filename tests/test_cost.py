"""FLOPs counting of the spotter and the selector, and the per-scale cost table of the selector's cost term."""
from pathlib import Path

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model

import dld.modeling.cost as cost
from dld import add_dld_config
from dld.modeling.cost import (
    BINARY_GIGA,
    FlopsTable,
    count_flops,
    count_selector_flops,
    flops_breakdown,
    lstm_flop_jit,
)
from dld.modeling.lowres import lowres_size
from dld.modeling.recognizer import SequenceEncoder
from dld.modeling.selector import ResolutionSelector

REPO_ROOT = Path(__file__).resolve().parents[1]
SCALES = (0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
SIZE = (288, 384)
NUM_DETECTIONS = 10  # fewer fixed detections than the model's cap (100) keep each count fast


pytestmark = pytest.mark.usefixtures("single_thread")


def _spotter(seed: int):
    """The CPU-sized spotter of the synthetic config, with random weights."""
    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.merge_from_file(str(REPO_ROOT / "configs/synth/text_spotter_R_18_FPN_synth.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(seed)
    return build_model(cfg)


@pytest.fixture(scope="module")
def spotter():
    return _spotter(0)


class _CountingAnalysis(cost.FlopCountAnalysis):
    calls = 0

    def __init__(self, *args, **kwargs):
        type(self).calls += 1
        super().__init__(*args, **kwargs)


def test_lowres_size_floors():
    assert lowres_size(288, 384, 0.7) == (201, 268)
    assert lowres_size(288, 384, 0.3) == (86, 115)
    assert lowres_size(100, 100, 0.29) == (29, 29)  # 100 * 0.29 = 28.999999999999996 in floating point
    assert lowres_size(288, 384, 1.0) == (288, 384)


def test_lstm_handle_counts_the_gate_matmuls():
    torch.manual_seed(0)
    enc = SequenceEncoder(16).eval()
    analysis = cost._analysis(enc, (torch.zeros(3, 7, 16),))
    ops = analysis.by_operator()
    steps_times_batch = 3 * 7
    # two BiLSTMs (16 -> 16): per direction W_ih [64, 16] and W_hh [64, 16]
    assert ops["lstm"] == steps_times_batch * 2 * 2 * (64 * 16 + 64 * 16)
    assert ops["linear"] == steps_times_batch * 2 * 32 * 16
    assert lstm_flop_jit is analysis._op_handles["aten::lstm"]


def test_count_flops_is_weight_independent_and_keeps_the_mode(spotter):
    spotter.train()
    base = count_flops(spotter, SIZE, num_detections=NUM_DETECTIONS)
    assert spotter.training and all(m.training for m in spotter.modules())
    other = _spotter(123)
    assert count_flops(other, SIZE, num_detections=NUM_DETECTIONS) == pytest.approx(base, rel=1e-12)
    assert count_flops(spotter, SIZE, num_detections=NUM_DETECTIONS, unit=BINARY_GIGA) == pytest.approx(
        base * 1e9 / 1024**3
    )
    # the model's padding: 280x380 is padded to 288x384
    assert count_flops(spotter, (280, 380), num_detections=NUM_DETECTIONS) == pytest.approx(base)


def test_breakdown_counts_every_head(spotter):
    parts = flops_breakdown(spotter, SIZE, num_detections=NUM_DETECTIONS)
    for name in ("backbone", "rpn", "box_head", "mask_head", "text_head"):
        assert parts[name] > 0, name
    assert sum(v for k, v in parts.items() if k != "total") == pytest.approx(parts["total"])
    more = flops_breakdown(spotter, SIZE, num_detections=2 * NUM_DETECTIONS)
    assert more["backbone"] == pytest.approx(parts["backbone"])
    assert more["mask_head"] == pytest.approx(2 * parts["mask_head"])
    assert more["text_head"] > parts["text_head"]


def test_table_grows_with_scale_and_is_cached(spotter, monkeypatch):
    monkeypatch.setattr(cost, "FlopCountAnalysis", _CountingAnalysis)
    _CountingAnalysis.calls = 0
    table = FlopsTable(spotter, scales=SCALES, num_detections=NUM_DETECTIONS)
    values = [table.student_gflops(*SIZE, s) for s in SCALES]
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert _CountingAnalysis.calls == len(SCALES)
    teacher = table.teacher_gflops(*SIZE)
    assert teacher > values[0]
    assert _CountingAnalysis.calls == len(SCALES) + 1
    # second use, and another size with the same padded student inputs: no new count
    again = table.normalized_cost(*SIZE)
    table.student_gflops(280, 380, 1.0)
    assert _CountingAnalysis.calls == len(SCALES) + 1
    assert torch.allclose(again, torch.tensor(values) / teacher)
    assert table.input_size(*SIZE, 0.7) == (224, 288)


@pytest.mark.parametrize("num_proposals, num_detections", [(7, 3), (40, 0), (0, 12)])
def test_measured_gflops_equal_a_count_at_those_roi_counts(spotter, num_proposals, num_detections):
    table = FlopsTable(spotter, scales=SCALES, num_detections=NUM_DETECTIONS)
    size = table.input_size(*SIZE, 0.5)
    expected = count_flops(spotter, size, num_proposals=num_proposals, num_detections=num_detections)
    measured = table.measured_gflops(*SIZE, 0.5, num_proposals, num_detections)
    assert measured == pytest.approx(expected, rel=1e-9)


def test_backbone_gflops_are_the_papers_measure_and_shrink_as_the_area(spotter):
    """Backbone + FPN + RPN only: the RoI heads' fixed part no longer hides the s² of the low resolution."""
    table = FlopsTable(spotter, scales=SCALES, num_detections=NUM_DETECTIONS)
    parts = flops_breakdown(spotter, table.input_size(*SIZE, 1.0), num_detections=NUM_DETECTIONS)
    full = table.backbone_gflops(*SIZE, 1.0)
    assert full == pytest.approx(parts["backbone"] + parts["rpn"])
    for s in (0.5, 0.3):
        (h, w), (fh, fw) = table.input_size(*SIZE, s), table.input_size(*SIZE, 1.0)
        assert table.backbone_gflops(*SIZE, s) / full == pytest.approx(h * w / (fh * fw), rel=0.05)
    # The whole model at its fixed RoI counts shrinks far slower (the old single column).
    assert table.student_gflops(*SIZE, 0.3) / table.student_gflops(*SIZE, 1.0) > table.backbone_gflops(
        *SIZE, 0.3
    ) / full + 0.1


def test_normalized_cost_is_one_at_the_teacher_scale(spotter):
    table = FlopsTable(spotter, scales=(1.0, 0.5), num_detections=NUM_DETECTIONS)
    cost_ = table.normalized_cost(*SIZE)
    assert cost_.shape == (2,) and cost_.dtype == torch.float32
    assert cost_[0].item() == pytest.approx(1.0)
    assert 0.0 < cost_[1].item() < 1.0


def test_power_cost_is_the_reference_proxy():
    table = FlopsTable(None, scales=SCALES, cost_type="power")
    expected = torch.tensor([s**1.5 for s in SCALES])
    assert torch.allclose(table.normalized_cost(*SIZE), expected)
    with pytest.raises(ValueError):
        FlopsTable(None, scales=SCALES, cost_type="flops")
    with pytest.raises(ValueError):
        FlopsTable(None, scales=SCALES, cost_type="macs")


def test_selector_flops_at_its_thumbnail_size():
    torch.manual_seed(0)
    sel = ResolutionSelector(scales=SCALES, base_channels=32, input_size=128).train()
    full = count_selector_flops(sel, SIZE)
    assert sel.training
    assert full == pytest.approx(count_selector_flops(sel, (96, 128)))  # the same 96x128 thumbnail
    assert full > 0
    assert count_selector_flops(ResolutionSelector(scales=SCALES, base_channels=32, input_size=0), SIZE) > 8 * full


def test_table_from_config(spotter):
    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.MODEL.DLD.SCALES = (0.6, 0.4)
    cfg.MODEL.DLD.COST.TYPE = "power"
    cfg.MODEL.DLD.COST.NUM_PROPOSALS = -1
    cfg.MODEL.DLD.COST.NUM_DETECTIONS = 0
    table = FlopsTable(cfg, spotter)
    assert table.scales == (0.6, 0.4) and table.cost_type == "power" and table.size_divisibility == 32
    assert table.num_proposals is None and table.num_detections == 0
    assert torch.allclose(table.normalized_cost(*SIZE), torch.tensor([0.6**1.5, 0.4**1.5]))
