"""
A cost budget chosen at test time: the selector's bias λ (MODEL.DLD.SELECTOR.TEST_COST_BIAS) that brings a DLD
model's mean GFLOPs per image to a budget, found by bisection on a validation subset. The selector runs once per
image; every λ is then a cheap argmax over the stored logits (:func:`dld.modeling.selector.biased_choice`).
"""
import logging
from dataclasses import dataclass
from typing import Dict, List, Sequence

import torch

from ..modeling.selector import biased_choice

__all__ = ["SelectorTable", "CostBudget", "bias_sweep", "selector_table", "evaluate_bias", "find_cost_bias"]

logger = logging.getLogger(__name__)


@dataclass
class SelectorTable:
    """Per validation image and candidate scale: the selector's logits, normalised cost and GFLOPs, all [N, K]."""

    scales: Sequence[float]
    logits: torch.Tensor
    cost: torch.Tensor  # T_k / T_teacher
    gflops: torch.Tensor  # selector + student at scale k


@dataclass
class CostBudget:
    """The bias found for a budget, and what it gives on the subset it was found on."""

    bias: float
    target_gflops: float
    mean_gflops: float
    mean_scale: float
    unbiased_gflops: float
    cheapest_gflops: float
    feasible: bool

    @property
    def relative_error(self) -> float:
        return abs(self.mean_gflops - self.target_gflops) / self.target_gflops


@torch.no_grad()
def selector_table(model, inputs: Sequence[Dict]) -> SelectorTable:
    """Run a DLDTextSpotter's selector on each mapped input dict and count the GFLOPs of every candidate."""
    model.eval()
    logits, cost, gflops = [], [], []
    for x in inputs:
        images = model.student.preprocess_image([x])
        h, w = images.image_sizes[0]
        logits.append(model.selector.predict_logits(images.tensor, images.image_sizes)[0].cpu())
        cost.append(model.flops_table.normalized_cost(h, w))
        selector = model.selector_gflops(h, w)
        gflops.append(torch.tensor([selector + model.flops_table.student_gflops(h, w, s) for s in model.scales]))
    return SelectorTable(model.scales, torch.stack(logits), torch.stack(cost), torch.stack(gflops).float())


def evaluate_bias(table: SelectorTable, bias: float) -> Dict[str, float]:
    """Mean GFLOPs and mean selected scale of the subset at bias λ."""
    index = biased_choice(table.logits, table.cost, bias)
    rows = torch.arange(len(index))
    scales = torch.tensor(table.scales, dtype=torch.float32)[index]
    return {"bias": float(bias), "mean_gflops": float(table.gflops[rows, index].mean()), "mean_scale": float(scales.mean())}


def find_cost_bias(
    table: SelectorTable, target_gflops: float, iterations: int = 60, max_bias: float = 1e6
) -> CostBudget:
    """
    The smallest λ >= 0 whose mean GFLOPs on the subset is at most `target_gflops` (bisection: the mean is a
    non-increasing step function of λ). λ = 0 when the unbiased model already fits; the cheapest choice everywhere
    (and `feasible=False`) when even that exceeds the budget.
    """
    if not target_gflops > 0:
        raise ValueError(f"the budget must be positive, got {target_gflops} GFLOPs")
    if len(table.logits) == 0:
        raise ValueError("no validation images to find the bias on")
    mean = lambda b: evaluate_bias(table, b)["mean_gflops"]  # noqa: E731
    unbiased = mean(0.0)
    cheapest = float(table.gflops.min(dim=1).values.mean())
    lo, hi = 0.0, 1.0
    if unbiased <= target_gflops:
        hi = 0.0
    else:
        while mean(hi) > target_gflops and hi < max_bias:
            hi *= 2.0
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            if mean(mid) > target_gflops:
                lo = mid
            else:
                hi = mid
    result = evaluate_bias(table, hi)
    feasible = result["mean_gflops"] <= target_gflops * (1 + 1e-9)
    if not feasible:
        logger.warning(
            "A budget of %.4f GFLOPs is below the cheapest choice (%.4f GFLOPs per image on this subset)",
            target_gflops, cheapest,
        )
    return CostBudget(
        bias=hi,
        target_gflops=float(target_gflops),
        mean_gflops=result["mean_gflops"],
        mean_scale=result["mean_scale"],
        unbiased_gflops=unbiased,
        cheapest_gflops=cheapest,
        feasible=feasible,
    )


def bias_sweep(table: SelectorTable, biases: Sequence[float]) -> List[Dict[str, float]]:
    """:func:`evaluate_bias` at each λ (the cost side of the accuracy-against-GFLOPs curve)."""
    return [evaluate_bias(table, b) for b in biases]
