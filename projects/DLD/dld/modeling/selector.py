"""
Dynamic Resolution Selector (DRS, reference spec §2): a small ResNet-like policy network that reads a
thumbnail of the normalised image and picks one of K candidate scales per image, with a hard Gumbel-softmax
(straight-through gradients) in training and the argmax of its logits at test.
"""
import logging
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.utils.registry import Registry
from torch import nn

__all__ = [
    "SELECTOR_REGISTRY",
    "build_selector",
    "ResolutionSelector",
    "SelectorOutput",
    "biased_choice",
    "gumbel_temperature",
    "make_thumbnails",
    "thumbnail_size",
]

logger = logging.getLogger(__name__)

SELECTOR_REGISTRY = Registry("DLD_SELECTOR")
SELECTOR_REGISTRY.__doc__ = """
Registry for DLD resolution selectors: modules that map a batch of normalised images to one candidate
scale per image.

The registered object is called with `obj(cfg)` and must return an `nn.Module` whose forward takes
`(images [B, 3, H, W], image_sizes=None, iteration=None)` and returns a `SelectorOutput`.
"""


def build_selector(cfg) -> nn.Module:
    """Build the selector named by `cfg.MODEL.DLD.SELECTOR.NAME`."""
    name = cfg.MODEL.DLD.SELECTOR.NAME
    return SELECTOR_REGISTRY.get(name)(cfg)


def gumbel_temperature(
    iteration: float, tau0: float = 5.0, decay: float = 0.965, iters_per_epoch: int = 1
) -> float:
    """τ(iteration) = τ0 · decay^(iteration / iters_per_epoch); the reference decays it once per epoch."""
    return float(tau0) * float(decay) ** (float(iteration) / max(int(iters_per_epoch), 1))


def thumbnail_size(height: int, width: int, input_size: int) -> Tuple[int, int]:
    """
    (h, w) of the thumbnail the selector reads: longer side `input_size`, aspect ratio kept (rounded), at
    least one pixel; `input_size <= 0` keeps the full size. The selector then zero-pads it to /32.
    """
    if input_size <= 0:
        return int(height), int(width)
    ratio = input_size / max(height, width)
    return max(1, int(round(height * ratio))), max(1, int(round(width * ratio)))


def make_thumbnails(
    images: torch.Tensor, image_sizes: List[Tuple[int, int]], input_size: int, size_divisibility: int = 32
) -> List[torch.Tensor]:
    """
    Per image, its [1, C, h', w'] thumbnail: the image cropped to its own size in `image_sizes` (without the
    batch padding), resized (bilinear, antialiased) so that its longer side is `input_size` and zero-padded to a
    multiple of `size_divisibility`. The selector's input, in eager inference and in the ONNX runner alike.
    """
    d = size_divisibility
    thumbs = []
    for image, (h, w) in zip(images, image_sizes):
        h, w = int(h), int(w)
        x = image[None, :, :h, :w]
        th, tw = thumbnail_size(h, w, input_size)
        if (th, tw) != (h, w):
            x = F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False, antialias=True)
        ph, pw = int(math.ceil(th / d) * d), int(math.ceil(tw / d) * d)
        thumbs.append(F.pad(x, (0, pw - tw, 0, ph - th)))
    return thumbs


def biased_choice(logits: torch.Tensor, cost: Optional[torch.Tensor] = None, bias: float = 0.0) -> torch.Tensor:
    """
    The test-time decision: argmax_k (logits[:, k] - bias · cost[:, k]). `logits` and `cost` are [B, K] (cost:
    each candidate's normalised cost T_k / T_teacher for that image; a [K] row is broadcast); bias 0 is the
    plain argmax whatever the cost. For any image, a larger bias never picks a costlier candidate.
    """
    if bias < 0:
        raise ValueError(f"the test-time cost bias must be >= 0, got {bias}")
    if bias == 0:
        return logits.argmax(dim=1)
    if cost is None:
        raise ValueError(f"a test-time cost bias of {bias} needs each candidate's normalised cost")
    return (logits - float(bias) * cost.to(logits)).argmax(dim=1)


@dataclass
class SelectorOutput:
    """Decision of the selector for a batch of B images over K candidate scales."""

    logits: torch.Tensor  # [B, K] policy logits
    onehot: torch.Tensor  # [B, K] one-hot decision; straight-through (soft Gumbel gradient) in training
    index: torch.Tensor  # [B] long, the chosen candidate
    scales: torch.Tensor  # [B] float, the chosen scale factor
    temperature: Optional[float] = None  # Gumbel temperature used (None at test)


class _BasicBlock(nn.Module):
    """conv3x3(stride) + BN + ReLU, conv3x3 + BN; shortcut conv1x1(stride) + BN; ReLU of the sum (spec §2.1)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


@SELECTOR_REGISTRY.register()
class ResolutionSelector(nn.Module):
    """
    The reference DRS (spec §2.1), width `base_channels` (32 in the reference): conv 7x7 s2 + BN + ReLU,
    four stride-2 BasicBlocks c→c→2c→4c→8c, global average pooling, Linear(8c → K). Total stride 32.

    It reads a copy of the normalised image resized (bilinear, antialiased) so that its longer side is
    `input_size` (`<= 0`: the full image, as the reference), zero-padded to a multiple of 32.

    Training: hard Gumbel-softmax at temperature `temperature(iteration)`; the forward decision is one-hot
    and the gradient is the soft sample's (straight-through). Test: argmax of the logits (deterministic;
    `test_sampling=True` restores the reference's Gumbel sample at τ = 1), or with `test_cost_bias` λ > 0 the
    argmax of logits − λ · normalised cost (:func:`biased_choice`; the caller passes the cost).
    """

    size_divisibility = 32

    @configurable
    def __init__(
        self,
        *,
        scales: Sequence[float] = (0.8, 0.7, 0.6, 0.5, 0.4, 0.3),
        base_channels: int = 32,
        input_size: int = 256,
        tau0: float = 5.0,
        tau_decay: float = 0.965,
        iters_per_epoch: int = 395,
        test_sampling: bool = False,
        test_cost_bias: float = 0.0,
        in_channels: int = 3,
    ):
        super().__init__()
        if len(scales) < 1:
            raise ValueError("ResolutionSelector needs at least one candidate scale")
        self.scales = tuple(float(s) for s in scales)
        self.input_size = int(input_size)
        self.tau0 = float(tau0)
        self.tau_decay = float(tau_decay)
        self.iters_per_epoch = int(iters_per_epoch)
        self.test_sampling = bool(test_sampling)
        if test_cost_bias < 0:
            raise ValueError(f"MODEL.DLD.SELECTOR.TEST_COST_BIAS must be >= 0, got {test_cost_bias}")
        self.test_cost_bias = float(test_cost_bias)
        c = int(base_channels)
        self.conv1 = nn.Conv2d(in_channels, c, 7, 2, 3, bias=True)
        self.bn1 = nn.BatchNorm2d(c)
        self.layers = nn.Sequential(
            _BasicBlock(c, c), _BasicBlock(c, 2 * c), _BasicBlock(2 * c, 4 * c), _BasicBlock(4 * c, 8 * c)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * c, len(self.scales))
        self.register_buffer("scale_values", torch.tensor(self.scales, dtype=torch.float32), persistent=False)

    @classmethod
    def from_config(cls, cfg):
        sel = cfg.MODEL.DLD.SELECTOR
        return {
            "scales": tuple(cfg.MODEL.DLD.SCALES),
            "base_channels": sel.BASE_CHANNELS,
            "input_size": sel.INPUT_SIZE,
            "tau0": sel.TEMPERATURE,
            "tau_decay": sel.TEMPERATURE_DECAY,
            "iters_per_epoch": sel.ITERS_PER_EPOCH,
            "test_sampling": sel.TEST_SAMPLING,
            "test_cost_bias": sel.TEST_COST_BIAS,
        }

    @property
    def num_scales(self) -> int:
        return len(self.scales)

    def temperature(self, iteration: float) -> float:
        """Gumbel temperature at a training iteration: τ0 · decay^(iteration / iters_per_epoch)."""
        return gumbel_temperature(iteration, self.tau0, self.tau_decay, self.iters_per_epoch)

    def thumbnails(
        self, images: torch.Tensor, image_sizes: Optional[List[Tuple[int, int]]] = None
    ) -> List[torch.Tensor]:
        """
        Per image, its [1, C, h', w'] thumbnail: the image cropped to its own size in `image_sizes` (when
        given, i.e. without the batch padding), resized so that its longer side is `input_size` and
        zero-padded to a multiple of 32.
        """
        if image_sizes is None:
            image_sizes = [tuple(images.shape[-2:])] * images.shape[0]
        return make_thumbnails(images, image_sizes, self.input_size, self.size_divisibility)

    def predict_logits(
        self, images: torch.Tensor, image_sizes: Optional[List[Tuple[int, int]]] = None
    ) -> torch.Tensor:
        """
        [B, K] policy logits of a batch of normalised images [B, C, H, W]. Thumbnails of equal padded size
        run as one batch, so no image sees another's padding: at test an image's logits do not depend on
        the rest of the batch (in training, BatchNorm statistics are shared within each group).
        """
        if images.shape[0] == 0:
            return images.new_zeros((0, self.num_scales))
        thumbs = self.thumbnails(images, image_sizes)
        groups = {}
        for i, t in enumerate(thumbs):
            groups.setdefault(tuple(t.shape[-2:]), []).append(i)
        logits = [None] * len(thumbs)
        for indices in groups.values():
            out = self._logits(torch.cat([thumbs[i] for i in indices], dim=0))
            for j, i in enumerate(indices):
                logits[i] = out[j]
        return torch.stack(logits, dim=0)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.layers(x)).flatten(1)
        return self.fc(x)

    def forward(
        self,
        images: torch.Tensor,
        image_sizes: Optional[List[Tuple[int, int]]] = None,
        iteration: Optional[int] = None,
        cost: Optional[torch.Tensor] = None,
    ) -> SelectorOutput:
        """
        Args:
            images: [B, C, H, W] normalised (possibly padded) images.
            image_sizes: per image, its (h, w) inside the padded batch; None: the whole tensor.
            iteration: training iteration for the temperature schedule; None reads the current
                Detectron2 EventStorage (0 outside a trainer). Unused at test.
            cost: [B, K] normalised cost of each candidate per image; needed at test when `test_cost_bias` > 0.
        """
        logits = self.predict_logits(images, image_sizes)
        tau = None
        if self.training:
            if iteration is None:
                iteration = _current_iteration()
            tau = self.temperature(iteration)
            onehot = F.gumbel_softmax(logits, tau=tau, hard=True)
            index = onehot.detach().argmax(dim=1)
        else:
            if self.test_sampling:
                index = F.gumbel_softmax(logits, tau=1.0, hard=True).argmax(dim=1)
            else:
                index = biased_choice(logits, cost, self.test_cost_bias)
            onehot = F.one_hot(index, self.num_scales).to(logits.dtype)
        scales = self.scale_values.to(logits.device)[index]
        return SelectorOutput(logits=logits, onehot=onehot, index=index, scales=scales, temperature=tau)


def _current_iteration() -> int:
    try:
        from detectron2.utils.events import get_event_storage

        return int(get_event_storage().iter)
    except AssertionError:  # no EventStorage in use
        return 0
