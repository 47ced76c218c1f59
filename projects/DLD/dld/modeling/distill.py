"""
DLDTextSpotter: the Dynamic Low-Resolution Distillation meta-architecture (reference spec §2, §3). One module
holds the student (a TextSpotterRCNN), the frozen high-resolution teacher and the Dynamic Resolution Selector.
"""
import logging
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

import torch
from detectron2.config import configurable, get_cfg
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.structures import ImageList, Instances
from detectron2.utils.file_io import PathManager
from torch import nn

from .cost import FlopsTable, count_selector_flops
from .distill_losses import feature_l2_loss, selector_accuracy_loss, selector_cost_loss, sequence_kd_loss
from .lowres import resize_batch
from .meta_arch import TextSpotterRCNN
from .pixel_reader import IMAGE_FEATURE
from .selector import build_selector
from ..utils.timing import synchronized_clock

__all__ = [
    "DLDTextSpotter",
    "build_teacher_cfg",
    "check_same_architecture",
    "inference_mode_of",
    "recognition_features",
]

logger = logging.getLogger(__name__)


def build_teacher_cfg(cfg):
    """The teacher's config: `MODEL.DLD.TEACHER.CONFIG` merged over the defaults, or the student's own."""
    if not cfg.MODEL.DLD.TEACHER.CONFIG:
        return cfg
    from ..config import add_dld_config

    teacher_cfg = get_cfg()
    add_dld_config(teacher_cfg)
    teacher_cfg.merge_from_file(cfg.MODEL.DLD.TEACHER.CONFIG)
    teacher_cfg.MODEL.DEVICE = cfg.MODEL.DEVICE
    return teacher_cfg


def check_same_architecture(student: nn.Module, state_dict: Dict[str, torch.Tensor], source: str) -> None:
    """Raise a ValueError naming every key missing, unexpected or of another shape in `state_dict`."""
    expected = {k: v.shape for k, v in student.state_dict().items()}
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state_dict) if tuple(state_dict[k].shape) != tuple(expected[k]))
    if missing or unexpected or wrong:
        details = [
            f"{len(missing)} missing: {missing[:10]}" if missing else "",
            f"{len(unexpected)} unexpected: {unexpected[:10]}" if unexpected else "",
            f"{len(wrong)} of another shape: "
            + str([(k, tuple(state_dict[k].shape), tuple(expected[k])) for k in wrong[:10]])
            if wrong
            else "",
        ]
        raise ValueError(
            f"Teacher checkpoint {source} does not match the teacher's architecture: "
            + "; ".join(d for d in details if d)
        )


def recognition_features(model: TextSpotterRCNN, image: torch.Tensor) -> Dict[str, torch.Tensor]:
    """
    What `model`'s recognition branch reads from a batch tensor: the image itself when it cuts words out of
    the input (MODEL.TEXT_HEAD.IN_FEATURE "image", no backbone needed), else the backbone's features.
    """
    if model.roi_heads.text_in_feature == IMAGE_FEATURE:
        return {IMAGE_FEATURE: image}
    return model.backbone(image)


@contextmanager
def inference_mode_of(module: nn.Module):
    """
    `module` in eval mode for the block (BatchNorm reads its running statistics and does not update them),
    each submodule's mode restored after.
    """
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, mode in modes:
            m.training = mode


@META_ARCH_REGISTRY.register()
class DLDTextSpotter(nn.Module):
    """
    Training: the frozen teacher reads the batch at its resolution (no grad); the selector picks one scale
    per image (hard Gumbel-softmax, straight-through); the student trains at that scale with its own losses
    plus SKD (RoI-feature L2, hidden-state L2, sequence KD on the teacher's top-k beams); the selector learns
    from the accuracy term at every candidate scale plus γ · T_i / T_teacher of the scale it chose.
    Inference: selector argmax → student at that scale → words mapped back to the original image; each
    output dict carries `selected_scale`, `gflops` (selector plus student at the chosen size, fvcore, cached
    per size) and `inference_time_s` (wall time of the batch's inference divided by its size).
    """

    @configurable
    def __init__(
        self,
        *,
        student: TextSpotterRCNN,
        teacher: TextSpotterRCNN,
        selector: nn.Module,
        flops_table: FlopsTable,
        gamma: float,
        accuracy_mode: str,
        skd_topk: int,
        skd_beam_width: int,
        skd_weighting: str,
        roi_weight: float,
        context_weight: float,
        seq_weight: float,
        teacher_weights: str = "",
        save_teacher: bool = False,
    ):
        super().__init__()
        self.student = student
        self.teacher = teacher
        self.selector = selector
        self.flops_table = flops_table
        self.gamma = gamma
        self.accuracy_mode = accuracy_mode
        self.skd_topk = skd_topk
        self.skd_beam_width = max(skd_beam_width, skd_topk)
        self.skd_weighting = skd_weighting
        self.roi_weight = roi_weight
        self.context_weight = context_weight
        self.seq_weight = seq_weight
        self.teacher_weights = teacher_weights
        self.save_teacher = save_teacher
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self._selector_gflops: Dict[Tuple[int, int], float] = {}

    @classmethod
    def from_config(cls, cfg):
        dld = cfg.MODEL.DLD
        if cfg.TEST.FIXED_SCALE != 1.0:
            raise ValueError(
                f"TEST.FIXED_SCALE is {cfg.TEST.FIXED_SCALE}: it applies to TextSpotterRCNN only, DLD's selector "
                "picks the scale of each image"
            )
        student = TextSpotterRCNN(cfg)
        teacher = TextSpotterRCNN(build_teacher_cfg(cfg))
        return {
            "student": student,
            "teacher": teacher,
            "selector": build_selector(cfg),
            "flops_table": FlopsTable(cfg, student),
            "gamma": dld.SELECTOR.COST_GAMMA,
            "accuracy_mode": dld.SELECTOR.ACCURACY_MODE,
            "skd_topk": dld.SKD.TOPK,
            "skd_beam_width": dld.SKD.BEAM_WIDTH,
            "skd_weighting": dld.SKD.SEQ_WEIGHTING,
            "roi_weight": dld.SKD.ROI_WEIGHT,
            "context_weight": dld.SKD.CONTEXT_WEIGHT,
            "seq_weight": dld.SKD.SEQ_WEIGHT,
            "teacher_weights": dld.TEACHER.WEIGHTS,
            "save_teacher": dld.TEACHER.SAVE,
        }

    @property
    def device(self) -> torch.device:
        return self.student.device

    @property
    def scales(self) -> Tuple[float, ...]:
        return tuple(float(s) for s in self.selector.scales)

    def train(self, mode: bool = True):
        """The teacher stays in eval mode whatever the mode of the rest."""
        super().train(mode)
        self.teacher.eval()
        return self

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        if not self.save_teacher:
            prefix = kwargs.get("prefix", "")
            for key in [k for k in state if k.startswith(prefix + "teacher.")]:
                del state[key]
        return state

    def load_teacher(self, init_student: bool = False) -> None:
        """
        Load the teacher from `MODEL.DLD.TEACHER.WEIGHTS` (after the student's weights were loaded), checking
        that it matches the teacher's architecture; with `init_student`, also start the student from it.
        """
        if not self.teacher_weights:
            raise ValueError("MODEL.DLD.TEACHER.WEIGHTS is empty: DLD needs a trained teacher checkpoint")
        with PathManager.open(self.teacher_weights, "rb") as f:
            checkpoint = torch.load(f, map_location="cpu", weights_only=False)
        state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            raise ValueError(f"Teacher checkpoint {self.teacher_weights} holds no model state dict")
        state = {k: torch.as_tensor(v) for k, v in state.items()}
        check_same_architecture(self.teacher, state, self.teacher_weights)
        self.teacher.load_state_dict(state)
        if init_student:
            check_same_architecture(self.student, state, self.teacher_weights)
            self.student.load_state_dict(state)
        logger.info(f"Teacher loaded from {self.teacher_weights}" + (" (student too)" if init_student else ""))

    # ---------------------------------------------------------------------------------------- inputs
    def _low_resolution(
        self, images: ImageList, scales: List[float], targets: Optional[List[Instances]] = None
    ) -> Tuple[ImageList, Optional[List[Instances]]]:
        """Each normalised image resized bilinearly by its own scale (reference spec §2.4), then batched."""
        return resize_batch(images, scales, self.student.backbone.size_divisibility, targets)

    # ---------------------------------------------------------------------------------------- training
    def forward(self, batched_inputs: List[Dict]):
        if not self.training:
            return self.inference(batched_inputs)
        images = self.student.preprocess_image(batched_inputs)
        targets = [x["instances"].to(self.device) for x in batched_inputs]

        with torch.no_grad():
            teacher_features = recognition_features(self.teacher, images.tensor)
            teacher_rec, text_targets = self.teacher.roi_heads.forward_text_train(teacher_features, targets)
        # Image of each recognised word, in recognition_inputs' order (encodable words, image by image).
        words_per_image = torch.stack([(t.gt_texts != 0).any(dim=1).sum() for t in targets])
        image_index = torch.repeat_interleave(torch.arange(len(targets), device=self.device), words_per_image)

        decision = self.selector(images.tensor, images.image_sizes)
        losses = self._selector_losses(images, targets, decision, teacher_rec.logits, text_targets, image_index)

        chosen = [self.scales[i] for i in decision.index.tolist()]
        lr_images, lr_targets = self._low_resolution(images, chosen, targets)
        features = self.student.backbone(lr_images.tensor)
        proposals, proposal_losses = self.student.proposal_generator(lr_images, features, lr_targets)
        # One recognition pass serves the student's own loss and distillation.
        _, detector_losses, student_rec = self.student.roi_heads.forward_train_with_recognition(
            lr_images, features, proposals, lr_targets, chosen
        )
        losses.update(proposal_losses)
        losses.update(detector_losses)
        losses.update(self._skd_losses(features, student_rec, teacher_rec))
        return losses

    def _selector_losses(self, images, targets, decision, teacher_logits, text_targets, image_index):
        """
        Accuracy at every candidate scale and the FLOPs cost of the chosen one. The student reads each scale
        without grad and in eval mode: its BatchNorm statistics follow only the scales it trains at.
        """
        heads = self.student.roi_heads
        per_scale = []
        with torch.no_grad(), inference_mode_of(self.student):
            for s in self.scales:
                scales = [s] * len(targets)
                lr_images, lr_targets = self._low_resolution(images, scales, targets)
                features = recognition_features(self.student, lr_images.tensor)
                per_scale.append(heads.forward_text_train(features, lr_targets, input_scales=scales)[0].logits)
        accuracy = selector_accuracy_loss(
            torch.stack(per_scale), teacher_logits, text_targets, decision.onehot, image_index, self.accuracy_mode
        )
        cost = torch.stack(
            [self.flops_table.normalized_cost(h, w) for h, w in images.image_sizes]
        ).to(decision.onehot)
        return {"loss_selector_accuracy": accuracy, "loss_selector_cost": selector_cost_loss(decision.onehot, cost, self.gamma)}

    def _skd_losses(self, features, student_rec, teacher_rec) -> Dict[str, torch.Tensor]:
        heads = self.student.roi_heads
        weights = (self.roi_weight, self.context_weight, self.seq_weight)
        if student_rec.context.shape[0] == 0 or not any(weights):
            # No legible word, or DRS without SKD (the ablation): no teacher beams to search.
            zero = sum(f.sum() for f in features.values()) * 0.0 + student_rec.context.sum() * 0.0
            return {"loss_kd_roi": zero, "loss_kd_context": zero, "loss_kd_seq": zero}
        with torch.no_grad():
            sequences, log_probs = self.teacher.roi_heads.text_head.decoder.beam_search(
                teacher_rec.context, self.skd_beam_width
            )
        k = self.skd_topk
        return {
            "loss_kd_roi": self.roi_weight * feature_l2_loss(student_rec.roi_features, teacher_rec.roi_features),
            "loss_kd_context": self.context_weight * feature_l2_loss(student_rec.context, teacher_rec.context),
            "loss_kd_seq": self.seq_weight
            * sequence_kd_loss(
                heads.text_head.decoder, student_rec.context, sequences[:, :k], log_probs[:, :k], self.skd_weighting
            ),
        }

    # ---------------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def inference(self, batched_inputs: List[Dict]) -> List[Dict]:
        start = synchronized_clock(self.device)
        images = self.student.preprocess_image(batched_inputs)
        decision = self.selector(images.tensor, images.image_sizes, cost=self.test_cost(images.image_sizes))
        scales = [self.scales[i] for i in decision.index.tolist()]
        lr_images, _ = self._low_resolution(images, scales)
        features = self.student.backbone(lr_images.tensor)
        proposals, _ = self.student.proposal_generator(lr_images, features, None)
        results, _ = self.student.roi_heads(lr_images, features, proposals, None, input_scales=scales)
        outputs = self.student.postprocess_words(results, batched_inputs, images.image_sizes)
        seconds = (synchronized_clock(self.device) - start) / max(len(outputs), 1)
        for out, s, (h, w), p, r in zip(outputs, scales, images.image_sizes, proposals, results):
            out["selected_scale"] = s
            if self.flops_table.model is not None:
                selector = self.selector_gflops(h, w)
                cost = self.flops_table.output_cost(h, w, s, len(p), len(r))
                out.update({k: selector + v for k, v in cost.items()})
            out["inference_time_s"] = seconds
        return outputs

    def test_cost(self, image_sizes: List[Tuple[int, int]]) -> Optional[torch.Tensor]:
        """
        [B, K] normalised cost T_k / T_teacher of each candidate scale per image, for the selector's test-time
        cost bias (MODEL.DLD.SELECTOR.TEST_COST_BIAS); None when the bias is 0 (nothing is measured).
        """
        if not getattr(self.selector, "test_cost_bias", 0.0):
            return None
        return torch.stack([self.flops_table.normalized_cost(h, w) for h, w in image_sizes]).to(self.device)

    def selector_gflops(self, height: int, width: int) -> float:
        """GFLOPs of the selector's decision on an (h, w) image (the student table's unit), counted once per size."""
        key = (int(height), int(width))
        if key not in self._selector_gflops:
            self._selector_gflops[key] = count_selector_flops(self.selector, key, unit=self.flops_table.unit)
        return self._selector_gflops[key]
