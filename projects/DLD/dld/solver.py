"""Optimizer selection: Detectron2's SGD or the AdamW the reference trains every stage with, and gradient clipping."""
import itertools
from typing import Type

import torch
from detectron2.config import CfgNode
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping

__all__ = ["build_optimizer", "FULL_MODEL_CLIP_TYPE", "maybe_add_full_model_gradient_clipping"]

# SOLVER.CLIP_GRADIENTS.CLIP_TYPE that clips the norm of all gradients together, as the reference does (and as
# Mask2Former and DETR do). Detectron2's own "norm" clips each parameter's gradient on its own.
FULL_MODEL_CLIP_TYPE = "full_model"


def maybe_add_full_model_gradient_clipping(cfg: CfgNode, optim: Type[torch.optim.Optimizer]):
    """`optim`, or a subclass whose step first scales all gradients to a total norm <= CLIP_VALUE."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if not (clip.ENABLED and clip.CLIP_TYPE == FULL_MODEL_CLIP_TYPE and clip.CLIP_VALUE > 0.0):
        return optim
    max_norm = float(clip.CLIP_VALUE)
    norm_type = float(clip.NORM_TYPE)

    class FullModelGradientClippingOptimizer(optim):
        def step(self, closure=None):
            params = itertools.chain(*[group["params"] for group in self.param_groups])
            torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
            return super().step(closure=closure)

    FullModelGradientClippingOptimizer.__name__ = optim.__name__ + "WithFullModelGradientClipping"
    return FullModelGradientClippingOptimizer


def _add_clipping(cfg: CfgNode, optim: Type[torch.optim.Optimizer]):
    if cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE == FULL_MODEL_CLIP_TYPE:
        return maybe_add_full_model_gradient_clipping(cfg, optim)
    return maybe_add_gradient_clipping(cfg, optim)


def build_optimizer(cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
    """`cfg.SOLVER.OPTIMIZER` is "SGD" or "ADAMW"; only parameters that require grad are optimized."""
    name = cfg.SOLVER.OPTIMIZER.upper()
    if name not in ("SGD", "ADAMW"):
        raise ValueError(f"SOLVER.OPTIMIZER must be SGD or ADAMW, got {cfg.SOLVER.OPTIMIZER!r}")
    params = get_default_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR if name == "SGD" else 1.0,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS if name == "SGD" else None,
    )
    if name == "SGD":
        # Detectron2's build_optimizer for SGD, with our clipping types.
        return _add_clipping(cfg, torch.optim.SGD)(
            params, lr=cfg.SOLVER.BASE_LR, momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV
        )
    return _add_clipping(cfg, torch.optim.AdamW)(params, lr=cfg.SOLVER.BASE_LR)
