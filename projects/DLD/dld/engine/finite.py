"""Stop training on the first non-finite loss or gradient, before the optimizer step writes it into the weights."""
import math
from typing import Dict, List, Mapping, Optional

import torch
from detectron2.engine import AMPTrainer, SimpleTrainer
from torch import nn

__all__ = ["FiniteAMPTrainer", "FiniteSimpleTrainer", "NonFiniteError", "build_finite_trainer"]

# How many parameter names a message lists.
_NAMES_SHOWN = 5


class NonFiniteError(FloatingPointError):
    """A loss term or a gradient became NaN or infinite; the message names the iteration and the culprit."""


def nonfinite_losses(loss_dict: Mapping[str, torch.Tensor]) -> Dict[str, float]:
    """``{name: value}`` of the loss terms that are NaN or infinite."""
    values = {name: float(value.detach().float().sum()) for name, value in loss_dict.items()}
    return {name: v for name, v in values.items() if not math.isfinite(v)}


def nonfinite_gradients(model: nn.Module) -> List[str]:
    """Names of the parameters whose gradient holds a NaN or an infinity (one host sync when all are finite)."""
    named = [(n, p.grad) for n, p in model.named_parameters() if p.grad is not None]
    if not named or bool(torch.stack([torch.isfinite(g).all() for _, g in named]).all()):
        return []
    return [n for n, g in named if not bool(torch.isfinite(g).all())]


def _losses_text(loss_dict: Mapping[str, torch.Tensor]) -> str:
    return ", ".join(f"{k}={float(v.detach().float().sum()):.4g}" for k, v in loss_dict.items())


class _FiniteCheck:
    """
    Mixin for Detectron2's SimpleTrainer/AMPTrainer. ``run_step`` calls ``_write_metrics`` after the backward
    pass and before ``optimizer.step()``; the checks run there, on every step and every process, so a bad
    step raises before any weight, optimizer state or checkpoint sees it.
    """

    check_gradients = True

    def _write_metrics(
        self,
        loss_dict: Mapping[str, torch.Tensor],
        data_time: float,
        prefix: str = "",
        iter: Optional[int] = None,
    ) -> None:
        iteration = self.iter if iter is None else iter
        bad = nonfinite_losses(loss_dict)
        if bad:
            terms = ", ".join(f"{name} = {value}" for name, value in bad.items())
            raise NonFiniteError(
                f"Non-finite loss at iteration {iteration}: {terms} (all terms: {_losses_text(loss_dict)}). "
                "Training stopped before the optimizer step: no weight was updated with it and no checkpoint "
                "is written after it."
            )
        if self.check_gradients:
            names = nonfinite_gradients(self.model)
            if names:
                shown = ", ".join(names[:_NAMES_SHOWN])
                if len(names) > _NAMES_SHOWN:
                    shown += f" and {len(names) - _NAMES_SHOWN} more"
                raise NonFiniteError(
                    f"Non-finite gradient at iteration {iteration} in {shown}, although every loss term is "
                    f"finite ({_losses_text(loss_dict)}). Training stopped before the optimizer step: no weight "
                    "was updated with it and no checkpoint is written after it."
                )
        super()._write_metrics(loss_dict, data_time, prefix=prefix, iter=iter)


class FiniteSimpleTrainer(_FiniteCheck, SimpleTrainer):
    """SimpleTrainer that stops on a non-finite loss term or gradient (see :class:`_FiniteCheck`)."""


class FiniteAMPTrainer(_FiniteCheck, AMPTrainer):
    """AMPTrainer that stops on a non-finite loss term; inf gradients are the grad scaler's to skip."""

    check_gradients = False


def build_finite_trainer(cfg, model: nn.Module, data_loader, optimizer: torch.optim.Optimizer) -> SimpleTrainer:
    """The inner trainer Detectron2's DefaultTrainer builds (AMP or not, per ``SOLVER.AMP.ENABLED``), checked."""
    cls = FiniteAMPTrainer if cfg.SOLVER.AMP.ENABLED else FiniteSimpleTrainer
    return cls(model, data_loader, optimizer)
