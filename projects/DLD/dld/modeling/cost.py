"""
FLOPs of the spotter and of the selector, and the per-scale cost table of the selector's cost term.

Units: fvcore counts one fused multiply-add as one flop, so "GFLOPs" here are giga multiply-adds
(GMACs). The default divisor is 1e9; the reference's `get_flops.py` divides by 1024**3
(`unit=BINARY_GIGA`). Reference spec §6.

What is counted, for one image of size (H, W) zero-padded to the backbone's size divisibility, in eval mode:
- backbone + FPN and the RPN head convolutions on every level;
- the box head (pooler + FCs + predictor) on `num_proposals` fixed boxes (None: the model's test-time
  post-NMS top-k, `MODEL.RPN.POST_NMS_TOPK_TEST`);
- the mask head and the recognition branch (masked RoI extractor incl. its P2 conv, CNN, BiLSTM encoder and
  the attention decoder run for all `num_steps` steps times the beam width) on `num_detections` fixed boxes
  (None: the model's cap `TEST.DETECTIONS_PER_IMAGE`).
Fixed boxes (a deterministic spread of word-shaped boxes relative to the image) instead of the real RPN/NMS
output make the count independent of the weights and of the image content. With the model's caps it is an
upper bound of the inference cost at that size, as the reference's `forward_dummy` (1000 proposals, 100
masks) was; the per-RoI part does not depend on the scale, so a realistic `num_detections` (a typical word
count) keeps the selector's cost term from being dominated by a constant.

fvcore skips (counts 0 for) element-wise ops (ReLU, sigmoid, add, mul, softmax, ...), max pooling, anchor
generation, box decoding, NMS, `torchvision::roi_align` (the RoI poolers) and the antialiased resize of the
selector's thumbnail (`aten::_upsample_bilinear2d_aa`). It has no handle for `aten::lstm` (nn.LSTM): we add
one (`lstm_flop_jit`: T · N · Σ sizes of the weight matrices W_ih and W_hh of every layer and direction, i.e.
the gate matmuls; the gate non-linearities are element-wise and not counted, as everywhere else). nn.LSTMCell
is traced into `aten::linear` calls, which fvcore already counts.
Unlike the reference's numbers (which JIT dead-code elimination reduced to backbone + FPN + RPN), every
output here reaches the traced outputs, so the RoI heads and the recognition branch are counted.
"""
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from detectron2.config import configurable
from detectron2.structures import Boxes
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn

from .lowres import lowres_size, padded_size

__all__ = [
    "BINARY_GIGA",
    "FlopsTable",
    "count_flops",
    "count_selector_flops",
    "flops_breakdown",
    "lstm_flop_jit",
]

logger = logging.getLogger(__name__)

BINARY_GIGA = float(1024**3)  # the reference's "G"


def lstm_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """
    fvcore handle for `aten::lstm`: T · N · Σ numel(W) over the 2-D weight matrices (W_ih, W_hh, W_hr of
    each layer and direction), i.e. the multiply-adds of the gate matmuls. Biases and gates are element-wise.
    """
    x_shape = get_shape(inputs[0])
    params_index = 2  # lstm.input(input, hx[], params[], has_biases, num_layers, dropout, train, bidir, batch_first)
    if len(x_shape) == 2:  # lstm.data(data, batch_sizes, hx[], params[], ...): packed sequence
        steps_times_batch = x_shape[0]
        params_index = 3
    else:
        batch_first = inputs[-1].toIValue()
        t, n = (x_shape[1], x_shape[0]) if batch_first else (x_shape[0], x_shape[1])
        steps_times_batch = t * n
    weights = 0
    for p in inputs[params_index].node().inputs():
        shape = get_shape(p)
        if shape is not None and len(shape) == 2:
            weights += shape[0] * shape[1]
    return int(steps_times_batch * weights)


def _analysis(module: nn.Module, inputs: Tuple[torch.Tensor, ...]) -> FlopCountAnalysis:
    analysis = FlopCountAnalysis(module, inputs)
    analysis.set_op_handle("aten::lstm", lstm_flop_jit)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return analysis


def _fixed_boxes(n: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """n deterministic word-shaped boxes (W/4 × H/16) spread over an image (low-discrepancy centres)."""
    k = torch.arange(n, dtype=torch.float64)
    cx = torch.remainder(k * 0.6180339887 + 0.5, 1.0) * width
    cy = torch.remainder(k * 0.7548776662 + 0.5, 1.0) * height
    half_w, half_h = width / 8.0, height / 32.0
    boxes = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return boxes.to(device=device, dtype=torch.float32)


class _SpotterFlops(nn.Module):
    """Inference of a Detectron2 R-CNN (plus the text branch) on fixed boxes; returns every head's output."""

    def __init__(self, model: nn.Module, num_proposals: int, num_detections: int):
        super().__init__()
        self.backbone = model.backbone
        self.proposal_generator = model.proposal_generator
        self.roi_heads = model.roi_heads
        self.num_proposals = num_proposals
        self.num_detections = num_detections

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outputs: List[torch.Tensor] = []
        features = self.backbone(image)
        outputs += list(features.values())
        height, width = image.shape[-2:]
        if self.proposal_generator is not None:
            pg = self.proposal_generator
            objectness, deltas = pg.rpn_head([features[f] for f in pg.in_features])
            outputs += list(objectness) + list(deltas)
        heads = self.roi_heads
        if heads is None:
            return tuple(outputs)
        proposals = Boxes(_fixed_boxes(self.num_proposals, height, width, image.device))
        x = heads.box_pooler([features[f] for f in heads.box_in_features], [proposals])
        x = heads.box_head(x)
        scores, box_deltas = heads.box_predictor(x)
        outputs += [scores, box_deltas]

        det_boxes = _fixed_boxes(self.num_detections, height, width, image.device)
        masks = None
        if getattr(heads, "mask_on", False):
            if heads.mask_pooler is not None:
                m = heads.mask_pooler([features[f] for f in heads.mask_in_features], [Boxes(det_boxes)])
            else:
                m = {f: features[f] for f in heads.mask_in_features}
            mask_logits = heads.mask_head.layers(m)
            outputs.append(mask_logits)
            masks = mask_logits[:, 0].sigmoid()
        text_head = getattr(heads, "text_head", None)
        if text_head is not None:
            if masks is None:
                masks = det_boxes.new_ones((len(det_boxes), 28, 28))
            encoded = text_head.encode(features[heads.text_in_feature], [det_boxes], [masks])
            beam = max(1, int(getattr(heads, "beam_width", 1)))
            context = encoded.context.repeat_interleave(beam, dim=0)
            steps = text_head.decoder.num_steps
            tokens = torch.zeros((context.shape[0], steps), dtype=torch.long, device=context.device)
            outputs.append(text_head.decoder(context, tokens))  # all steps: the greedy/beam worst case
        return tuple(outputs)


class _BackboneFlops(nn.Module):
    """Backbone + FPN and the RPN head's convolutions: the paper's cost measure (reference spec §6)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.backbone = model.backbone
        self.proposal_generator = model.proposal_generator

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        features = self.backbone(image)
        outputs = list(features.values())
        pg = self.proposal_generator
        if pg is not None:
            objectness, deltas = pg.rpn_head([features[f] for f in pg.in_features])
            outputs += list(objectness) + list(deltas)
        return tuple(outputs)


class _SelectorFlops(nn.Module):
    def __init__(self, selector: nn.Module):
        super().__init__()
        self.selector = selector

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.selector.predict_logits(image)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _size_divisibility(model: nn.Module) -> int:
    backbone = getattr(model, "backbone", None)
    return int(getattr(backbone, "size_divisibility", 0) or 0)


def _spotter_analysis(
    model: nn.Module,
    image_size: Tuple[int, int],
    num_proposals: Optional[int],
    num_detections: Optional[int],
) -> FlopCountAnalysis:
    heads = getattr(model, "roi_heads", None)
    if num_proposals is None:
        pg = getattr(model, "proposal_generator", None)
        num_proposals = int(pg.post_nms_topk[False]) if pg is not None else 1000
    if num_detections is None:
        num_detections = int(getattr(heads, "test_detections_per_img", 100))
    height, width = padded_size(int(image_size[0]), int(image_size[1]), _size_divisibility(model))
    image = torch.zeros((1, 3, height, width), device=_model_device(model))
    return _analysis(_SpotterFlops(model, num_proposals, num_detections), (image,))


class _EvalMode:
    """Puts a module in eval mode and no-grad for the block, then restores each submodule's mode."""

    def __init__(self, module: nn.Module):
        self.module = module

    def __enter__(self):
        self.modes = [(m, m.training) for m in self.module.modules()]
        self.module.eval()
        self.no_grad = torch.no_grad()
        self.no_grad.__enter__()

    def __exit__(self, *exc):
        self.no_grad.__exit__(*exc)
        for m, mode in self.modes:
            m.training = mode


def count_flops(
    model: nn.Module,
    image_size: Tuple[int, int],
    *,
    num_proposals: Optional[int] = None,
    num_detections: Optional[int] = None,
    unit: float = 1e9,
) -> float:
    """
    GFLOPs (fvcore: 1 multiply-add = 1 flop; `unit=1e9`, or `BINARY_GIGA` for the reference's 1024**3) of
    the inference of a Detectron2 R-CNN text spotter on one image of size `image_size` = (H, W), after the
    model's own padding to its size divisibility. See the module docstring for what is counted; the RoI
    heads run on `num_proposals` / `num_detections` fixed boxes (None: the model's test-time caps).
    """
    with _EvalMode(model):
        total = _spotter_analysis(model, image_size, num_proposals, num_detections).total()
    return float(total) / unit


def flops_breakdown(
    model: nn.Module,
    image_size: Tuple[int, int],
    *,
    num_proposals: Optional[int] = None,
    num_detections: Optional[int] = None,
    unit: float = 1e9,
) -> Dict[str, float]:
    """`count_flops` split by component: backbone, rpn, box_head, mask_head, text_head and total."""
    with _EvalMode(model):
        by_module = _spotter_analysis(model, image_size, num_proposals, num_detections).by_module()
    groups = {
        "backbone": ["backbone"],
        "rpn": ["proposal_generator"],
        "box_head": ["roi_heads.box_pooler", "roi_heads.box_head", "roi_heads.box_predictor"],
        "mask_head": ["roi_heads.mask_pooler", "roi_heads.mask_head"],
        "text_head": ["roi_heads.text_head"],
    }
    out = {k: sum(float(by_module.get(n, 0)) for n in names) / unit for k, names in groups.items()}
    out["total"] = float(by_module[""]) / unit
    return out


def count_selector_flops(selector: nn.Module, image_size: Tuple[int, int], *, unit: float = 1e9) -> float:
    """
    GFLOPs of the selector's decision for one (already padded) image of size (H, W): the network at its
    thumbnail size (the antialiased resize itself is not counted by fvcore).
    """
    image = torch.zeros((1, 3, int(image_size[0]), int(image_size[1])), device=_model_device(selector))
    with _EvalMode(selector):
        total = _analysis(_SelectorFlops(selector), (image,)).total()
    return float(total) / unit


class FlopsTable:
    """
    Per-scale cost of the student, for the selector's cost term γ · T_i / T_teacher.

    `student_gflops(h, w, s)` is the GFLOPs of `model` on an (h, w) image resized to floor(h·s) × floor(w·s)
    and padded to the size divisibility; it is measured with `count_flops` on first use and cached per padded
    size. T_teacher is the cost at scale 1.0 (the teacher's resolution; teacher and student share the
    architecture). With `cost_type="power"` the normalised cost is the reference's proxy s**1.5 and nothing
    is measured.
    """

    COST_TYPES = ("flops", "backbone", "power")

    @configurable
    def __init__(
        self,
        model: Optional[nn.Module],
        *,
        scales: Sequence[float],
        cost_type: str = "flops",
        size_divisibility: Optional[int] = None,
        num_proposals: Optional[int] = None,
        num_detections: Optional[int] = None,
        unit: float = 1e9,
    ):
        if cost_type not in self.COST_TYPES:
            raise ValueError(f"cost_type must be one of {self.COST_TYPES}, got {cost_type!r}")
        if cost_type != "power" and model is None:
            raise ValueError(f"cost_type={cost_type!r} needs the student model")
        self.model = model
        self.scales = tuple(float(s) for s in scales)
        self.cost_type = cost_type
        if size_divisibility is None:
            size_divisibility = _size_divisibility(model) if model is not None else 32
        self.size_divisibility = int(size_divisibility)
        self.num_proposals = num_proposals
        self.num_detections = num_detections
        self.unit = float(unit)
        self._cache: Dict[Tuple[int, int], Dict[str, float]] = {}
        self._backbone_cache: Dict[Tuple[int, int], float] = {}
        self._per_roi: Optional[Tuple[float, float]] = None

    @classmethod
    def from_config(cls, cfg, model: Optional[nn.Module]):
        cost = cfg.MODEL.DLD.COST
        return {
            "model": model,
            "scales": tuple(cfg.MODEL.DLD.SCALES),
            "cost_type": cost.TYPE,
            "size_divisibility": None,
            "num_proposals": cost.NUM_PROPOSALS if cost.NUM_PROPOSALS >= 0 else None,
            "num_detections": cost.NUM_DETECTIONS if cost.NUM_DETECTIONS >= 0 else None,
        }

    def input_size(self, height: int, width: int, scale: float) -> Tuple[int, int]:
        """Padded size of the student's input for an (h, w) image at `scale` (the cache key)."""
        h, w = lowres_size(height, width, scale)
        return padded_size(h, w, self.size_divisibility)

    def _breakdown(self, height: int, width: int, scale: float) -> Dict[str, float]:
        """`flops_breakdown` of the student at the fixed RoI counts; measured once per padded size."""
        if self.model is None:
            raise ValueError("this FlopsTable has no model to measure (cost_type='power')")
        key = self.input_size(height, width, scale)
        if key not in self._cache:
            self._cache[key] = flops_breakdown(
                self.model,
                key,
                num_proposals=self.num_proposals,
                num_detections=self.num_detections,
                unit=self.unit,
            )
            logger.debug("FLOPs of the student at %s: %.3f G", key, self._cache[key]["total"])
        return self._cache[key]

    def student_gflops(self, height: int, width: int, scale: float) -> float:
        """GFLOPs of the whole student on an (h, w) image at `scale`, its RoI heads on the fixed RoI counts."""
        return self._breakdown(height, width, scale)["total"]

    def backbone_gflops(self, height: int, width: int, scale: float) -> float:
        """
        The paper's measure: backbone + FPN + RPN head at `scale`, what the reference's FLOPs script effectively
        counts (its JIT trace dropped the RoI heads; reference spec §6).
        """
        key = self.input_size(height, width, scale)
        if key not in self._backbone_cache:
            image = torch.zeros((1, 3) + key, device=_model_device(self.model))
            with _EvalMode(self.model):
                total = _analysis(_BackboneFlops(self.model), (image,)).total()
            self._backbone_cache[key] = float(total) / self.unit
        return self._backbone_cache[key]

    def measured_gflops(
        self, height: int, width: int, scale: float, num_proposals: int, num_detections: int
    ) -> float:
        """
        GFLOPs of the whole student at `scale` with the RoI heads on an image's real proposal and detection
        counts: the fixed-count total with its per-RoI part replaced. The box head costs the same per proposal,
        the mask head and the recognition branch the same per detection, whatever the image size.
        """
        per_proposal, per_detection = self._per_roi_gflops()
        fixed_proposals, fixed_detections = self._fixed_roi_counts()
        size_part = self.student_gflops(height, width, scale) - (
            fixed_proposals * per_proposal + fixed_detections * per_detection
        )
        return size_part + num_proposals * per_proposal + num_detections * per_detection

    def output_cost(
        self, height: int, width: int, scale: float, num_proposals: int, num_detections: int
    ) -> Dict[str, float]:
        """
        The two cost columns of an inference output: `gflops` (:meth:`measured_gflops`, the whole model at the
        image's real RoI counts) and `gflops_backbone` (:meth:`backbone_gflops`, the paper's measure).
        """
        return {
            "gflops": self.measured_gflops(height, width, scale, num_proposals, num_detections),
            "gflops_backbone": self.backbone_gflops(height, width, scale),
        }

    def _fixed_roi_counts(self) -> Tuple[int, int]:
        heads = getattr(self.model, "roi_heads", None)
        proposals = self.num_proposals
        if proposals is None:
            proposals = int(self.model.proposal_generator.post_nms_topk[False])
        detections = self.num_detections
        if detections is None:
            detections = int(getattr(heads, "test_detections_per_img", 100))
        return proposals, detections

    def _per_roi_gflops(self) -> Tuple[float, float]:
        """GFLOPs per proposal (box head) and per detection (mask head, recognition), measured once."""
        if self._per_roi is None:
            proposals, detections = self._fixed_roi_counts()
            size = (4 * self.size_divisibility or 64,) * 2
            one = flops_breakdown(self.model, size, num_proposals=proposals, num_detections=detections, unit=self.unit)
            two = flops_breakdown(
                self.model, size, num_proposals=proposals, num_detections=2 * detections, unit=self.unit
            )
            per_detection = (two["total"] - one["total"]) / detections
            self._per_roi = (one["box_head"] / proposals, per_detection)
        return self._per_roi

    def teacher_gflops(self, height: int, width: int) -> float:
        """T_teacher: the cost at scale 1.0."""
        return self.student_gflops(height, width, 1.0)

    def gflops(self, height: int, width: int) -> torch.Tensor:
        """[K] GFLOPs of the student over the candidate scales."""
        return torch.tensor([self.student_gflops(height, width, s) for s in self.scales], dtype=torch.float32)

    def normalized_cost(self, height: int, width: int) -> torch.Tensor:
        """
        [K] cost T_i / T_teacher of each candidate scale, float32 on the CPU: "flops" the whole student at the
        fixed RoI counts, "backbone" backbone + FPN + RPN (the paper's reported measure), "power" s**1.5.
        """
        if self.cost_type == "power":
            return torch.tensor([s**1.5 for s in self.scales], dtype=torch.float32)
        if self.cost_type == "backbone":
            full = self.backbone_gflops(height, width, 1.0)
            return torch.tensor([self.backbone_gflops(height, width, s) / full for s in self.scales])
        return self.gflops(height, width) / self.teacher_gflops(height, width)
