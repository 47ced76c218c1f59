"""The selector's test-time cost bias λ and the budget mode that picks it."""
import pytest
import torch
from detectron2.modeling import build_model

from dld.evaluation.cost_budget import SelectorTable, evaluate_bias, find_cost_bias
from dld.modeling.selector import biased_choice
from conftest import small_dld_cfg


def _table(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    scales = (0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
    logits = torch.randn(n, len(scales), generator=g) * 2
    s = torch.tensor(scales)
    # Costs grow with the scale (about s^2 plus a constant), a little different per image.
    cost = (0.1 + s**2)[None] * (1 + 0.1 * torch.rand(n, 1, generator=g))
    gflops = 3.0 * cost + 0.05
    return SelectorTable(scales, logits, cost, gflops)


def test_zero_bias_is_the_plain_argmax():
    table = _table()
    assert torch.equal(biased_choice(table.logits, table.cost, 0.0), table.logits.argmax(dim=1))
    assert torch.equal(biased_choice(table.logits, None, 0.0), table.logits.argmax(dim=1))


def test_larger_bias_never_raises_the_mean_scale_nor_any_image_cost():
    table = _table()
    rows = torch.arange(len(table.logits))
    previous_scale, previous_cost = float("inf"), None
    for bias in [0.0, 0.1, 0.3, 1.0, 2.0, 5.0, 10.0, 100.0, 1e4]:
        result = evaluate_bias(table, bias)
        assert result["mean_scale"] <= previous_scale + 1e-9
        cost = table.cost[rows, biased_choice(table.logits, table.cost, bias)]
        if previous_cost is not None:
            assert bool((cost <= previous_cost + 1e-9).all())
        previous_scale, previous_cost = result["mean_scale"], cost
    assert result["mean_scale"] == pytest.approx(0.3)


def test_bias_needs_a_cost_and_cannot_be_negative():
    logits = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="normalised cost"):
        biased_choice(logits, None, 0.5)
    with pytest.raises(ValueError, match=">= 0"):
        biased_choice(logits, torch.zeros(2, 3), -1.0)


@pytest.mark.parametrize("fraction", [0.5, 0.7, 0.9])
def test_budget_mode_lands_within_five_percent(fraction):
    table = _table()
    unbiased = evaluate_bias(table, 0.0)["mean_gflops"]
    cheapest = float(table.gflops.min(dim=1).values.mean())
    target = cheapest + fraction * (unbiased - cheapest)
    budget = find_cost_bias(table, target)
    assert budget.feasible and budget.bias > 0
    assert budget.mean_gflops <= target
    assert budget.relative_error <= 0.05


def test_budget_above_the_unbiased_cost_keeps_zero_and_below_the_cheapest_is_flagged():
    table = _table()
    unbiased = evaluate_bias(table, 0.0)["mean_gflops"]
    assert find_cost_bias(table, unbiased * 1.5).bias == 0.0
    budget = find_cost_bias(table, 0.01)
    assert not budget.feasible and budget.mean_scale == pytest.approx(0.3)


def test_dld_model_zero_bias_reproduces_the_selections_and_a_large_bias_picks_cheaper(small_cfg, tmp_path):
    cfg = small_dld_cfg(small_cfg)
    cfg.MODEL.DLD.TEACHER.WEIGHTS = ""
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(0)
    inputs = [{"image": torch.rand(3, 96, 128, generator=g) * 255 * (i + 1) / 6} for i in range(6)]
    with torch.no_grad():
        images = model.student.preprocess_image(inputs)
        logits = model.selector.predict_logits(images.tensor, images.image_sizes)
        # A boundary between the images, so that the plain argmax picks both scales.
        model.selector.fc.bias[0] -= float((logits[:, 0] - logits[:, 1]).median())
        logits = model.selector.predict_logits(images.tensor, images.image_sizes)
        today = model.selector(images.tensor, images.image_sizes).index
        assert model.selector.test_cost_bias == 0.0 and model.test_cost(images.image_sizes) is None
        assert torch.equal(today, logits.argmax(dim=1)) and len(set(today.tolist())) == 2
        outputs = model(inputs)
        assert [o["selected_scale"] for o in outputs] == [model.scales[i] for i in today.tolist()]
        cost = torch.tensor([[0.8**1.5, 0.5**1.5]]).expand(6, 2)
        for bias in (0.0, 1.0, 1e4):
            model.selector.test_cost_bias = bias
            index = model.selector(images.tensor, images.image_sizes, cost=cost).index
            assert torch.equal(index, biased_choice(model.selector.predict_logits(images.tensor, images.image_sizes), cost, bias))
        assert bool((index == 1).all())  # the largest bias: the cheapest scale everywhere


def test_accuracy_plot_draws_a_bias_sweep_as_one_curve(tmp_path):
    from dld.utils.report_plots import plot_accuracy_vs_cost

    rows = [
        {"name": "teacher x1", "gflops": 3.0, "e2e_hmean": 50.0, "det_hmean": 80.0},
        {"name": "teacher x0.5", "gflops": 1.5, "e2e_hmean": 30.0, "det_hmean": 70.0},
        {"name": "DLD (gamma=0.1)", "gflops": 2.2, "e2e_hmean": 45.0, "det_hmean": 78.0},
        {"name": "DLD (gamma=0.1) lambda=5", "gflops": 1.9, "e2e_hmean": 41.0, "det_hmean": 76.0,
         "curve": "DLD (gamma=0.1)"},
        {"name": "DLD (gamma=0.1) lambda=20", "gflops": 1.6, "e2e_hmean": 35.0, "det_hmean": 72.0,
         "curve": "DLD (gamma=0.1)"},
    ]
    path = tmp_path / "plot.png"
    plot_accuracy_vs_cost(rows, str(path))
    assert path.stat().st_size > 1000
