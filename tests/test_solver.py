"""Full-model gradient clipping (SOLVER.CLIP_GRADIENTS.CLIP_TYPE "full_model") bounds the total gradient norm."""
import pytest
import torch
from detectron2.config import get_cfg
from torch import nn

from dld import add_dld_config
from dld.solver import build_optimizer


def _cfg(clip_type: str, optimizer: str = "ADAMW", clip_value: float = 1.0):
    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.SOLVER.OPTIMIZER = optimizer
    cfg.SOLVER.BASE_LR = 0.0  # the step must leave the weights alone: only the clipping of the gradients shows
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = clip_type
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = clip_value
    return cfg


def _model_with_large_gradients() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 3))
    loss = (model(torch.randn(4, 8)) * 1000).pow(2).sum()
    loss.backward()
    return model


def _total_norm(model: nn.Module) -> float:
    return torch.norm(torch.stack([p.grad.norm() for p in model.parameters()])).item()


@pytest.mark.parametrize("optimizer", ["ADAMW", "SGD"])
def test_full_model_clipping_bounds_the_total_gradient_norm(optimizer):
    model = _model_with_large_gradients()
    before = _total_norm(model)
    assert before > 100
    grads = [p.grad.clone() for p in model.parameters()]
    build_optimizer(_cfg("full_model", optimizer, clip_value=2.0), model).step()
    assert _total_norm(model) == pytest.approx(2.0, rel=1e-4)
    # One common factor: the direction of the whole gradient is kept.
    ratios = [(p.grad / g)[g.abs() > 1e-3] for p, g in zip(model.parameters(), grads)]
    factor = ratios[0].flatten()[0]
    assert all(torch.allclose(r, factor, rtol=1e-4) for r in ratios)


def test_per_parameter_norm_clipping_does_not_bound_the_total():
    """Detectron2's "norm" clips each parameter alone: with six parameters the total can reach sqrt(6) x."""
    model = _model_with_large_gradients()
    build_optimizer(_cfg("norm", clip_value=2.0), model).step()
    assert _total_norm(model) > 2.0 * 2


def test_base_configs_clip_the_full_model():
    from conftest import REPO_ROOT

    for name in ("configs/Base-TextSpotter.yaml", "configs/synth/text_spotter_R_18_FPN_synth.yaml"):
        cfg = get_cfg()
        add_dld_config(cfg)
        cfg.merge_from_file(str(REPO_ROOT / name))
        assert cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE == "full_model", name
        assert cfg.MODEL.RESNETS.NORM == "GN" and cfg.MODEL.FPN.NORM == "GN", name
