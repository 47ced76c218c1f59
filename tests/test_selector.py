"""The Dynamic Resolution Selector: straight-through Gumbel decisions, argmax at test, the temperature
schedule, the thumbnail input and, on a tiny fixed problem, the accuracy/cost trade-off it learns."""
import pytest
import torch
import torch.nn.functional as F
from detectron2.config import get_cfg

from dld import add_dld_config
from dld.modeling.selector import (
    SELECTOR_REGISTRY,
    ResolutionSelector,
    build_selector,
    gumbel_temperature,
    thumbnail_size,
)

SCALES = (0.8, 0.7, 0.6, 0.5, 0.4, 0.3)


pytestmark = pytest.mark.usefixtures("single_thread")


def _selector(**kwargs) -> ResolutionSelector:
    args = dict(scales=SCALES, base_channels=8, input_size=64, tau0=5.0, tau_decay=0.965, iters_per_epoch=100)
    args.update(kwargs)
    return ResolutionSelector(**args)


def test_reference_architecture():
    sel = ResolutionSelector(scales=SCALES, base_channels=32)
    assert (sel.conv1.in_channels, sel.conv1.out_channels, sel.conv1.kernel_size, sel.conv1.stride) == (
        3, 32, (7, 7), (2, 2)
    )
    assert sel.conv1.bias is not None
    widths = [(b.conv1.in_channels, b.conv2.out_channels) for b in sel.layers]
    assert widths == [(32, 32), (32, 64), (64, 128), (128, 256)]
    for block in sel.layers:
        assert block.conv1.stride == (2, 2) and block.shortcut[0].stride == (2, 2)
        assert block.shortcut[0].kernel_size == (1, 1)
    assert (sel.fc.in_features, sel.fc.out_features) == (256, 6)
    with torch.no_grad():
        assert sel.eval()(torch.zeros(2, 3, 64, 96)).logits.shape == (2, 6)


def test_build_selector_from_config():
    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.MODEL.DLD.SCALES = (0.6, 0.4)
    cfg.MODEL.DLD.SELECTOR.BASE_CHANNELS = 8
    cfg.MODEL.DLD.SELECTOR.INPUT_SIZE = 96
    cfg.MODEL.DLD.SELECTOR.TEMPERATURE = 4.0
    cfg.MODEL.DLD.SELECTOR.TEMPERATURE_DECAY = 0.5
    cfg.MODEL.DLD.SELECTOR.ITERS_PER_EPOCH = 10
    cfg.MODEL.DLD.SELECTOR.TEST_SAMPLING = False
    assert "ResolutionSelector" in SELECTOR_REGISTRY
    sel = build_selector(cfg)
    assert isinstance(sel, ResolutionSelector)
    assert sel.scales == (0.6, 0.4) and sel.input_size == 96 and sel.conv1.out_channels == 8
    assert sel.temperature(20) == pytest.approx(1.0)


def test_temperature_schedule():
    sel = _selector(iters_per_epoch=395)
    for epoch, expected in [(0, 5.0), (10, 3.50), (20, 2.45)]:
        assert sel.temperature(epoch * 395) == pytest.approx(expected, abs=0.01)
        assert gumbel_temperature(epoch * 395, 5.0, 0.965, 395) == pytest.approx(expected, abs=0.01)
    assert sel.temperature(0.5 * 395) == pytest.approx(5.0 * 0.965**0.5)  # per iteration, not per whole epoch


def test_training_decision_is_one_hot_with_straight_through_gradient():
    torch.manual_seed(0)
    sel = _selector().train()
    images = torch.randn(4, 3, 64, 80)
    out = sel(images, iteration=0)
    assert out.onehot.shape == (4, 6) and out.logits.shape == (4, 6)
    assert set(out.onehot.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out.onehot.detach().sum(dim=1), torch.ones(4))
    assert torch.equal(out.onehot.detach(), F.one_hot(out.index, 6).float())
    assert torch.allclose(out.scales, torch.tensor(SCALES)[out.index])
    assert out.scales.dtype == torch.float32 and out.temperature == pytest.approx(5.0)
    values = torch.tensor([0.3, -0.2, 0.5, 0.1, -0.4, 0.9])
    (out.onehot * values).sum().backward()
    assert sel.conv1.weight.grad is not None and sel.conv1.weight.grad.abs().sum() > 0
    assert sel.fc.weight.grad.abs().sum() > 0 and sel.fc.bias.grad.abs().sum() > 0


def test_inference_is_argmax_and_repeatable():
    torch.manual_seed(0)
    sel = _selector().eval()
    images = torch.randn(5, 3, 64, 64)
    with torch.no_grad():
        a, b = sel(images), sel(images)
    assert torch.equal(a.index, b.index)
    assert torch.equal(a.index, a.logits.argmax(dim=1))
    assert torch.equal(a.onehot, F.one_hot(a.index, 6).float())
    assert a.temperature is None


def test_thumbnail_keeps_aspect_and_ignores_batch_padding():
    assert thumbnail_size(288, 384, 128) == (96, 128)
    assert thumbnail_size(400, 100, 128) == (128, 32)
    assert thumbnail_size(288, 384, 0) == (288, 384)
    torch.manual_seed(0)
    sel = _selector(input_size=128).eval()
    assert sel.thumbnails(torch.zeros(1, 3, 288, 384))[0].shape == (1, 3, 96, 128)
    assert sel.thumbnails(torch.zeros(1, 3, 100, 150))[0].shape == (1, 3, 96, 128)  # 85x128 padded to /32
    image = torch.randn(1, 3, 100, 150)
    padded = torch.zeros(2, 3, 160, 192)
    padded[0, :, :100, :150] = image[0]
    padded[1] = torch.randn(3, 160, 192)
    with torch.no_grad():
        alone = sel.predict_logits(image)
        batched = sel.predict_logits(padded, image_sizes=[(100, 150), (160, 192)])
    # each image is cropped to its own size and padded to its own multiple of 32, whatever the batch
    assert torch.allclose(alone[0], batched[0], atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(sel.predict_logits(padded[1:]), batched[1], atol=1e-5)
        assert sel.predict_logits(padded[:0]).shape == (0, 6)


def _train_mean_scale(gamma: float, steps: int = 150) -> float:
    torch.manual_seed(0)
    images = torch.randn(8, 3, 64, 64)
    sel = _selector(tau0=1.0, tau_decay=1.0)
    scales = torch.tensor(SCALES)
    acc = torch.tensor([0.0, 0.05, 0.1, 0.2, 0.4, 0.8])
    per_scale = acc + gamma * scales**2
    opt = torch.optim.Adam(sel.parameters(), lr=0.01)
    sel.train()
    for it in range(steps):
        out = sel(images, iteration=it)
        loss = (out.onehot * per_scale).sum(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    sel.eval()
    with torch.no_grad():
        return float(sel(images).scales.mean())


def test_cost_weight_lowers_the_selected_scale():
    # γ = 0: the best choice is 0.8 (lowest accuracy loss); γ = 2: acc + 2 s² is lowest at s = 0.5.
    free, costly = _train_mean_scale(0.0), _train_mean_scale(2.0)
    assert costly < free
    assert free == pytest.approx(0.8)
    assert costly == pytest.approx(0.5, abs=0.051)
