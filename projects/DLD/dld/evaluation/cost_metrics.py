"""
The cost side of an evaluation: what the model's outputs say about each image (`selected_scale`, `gflops`,
`inference_time_s`, put there by :class:`dld.modeling.TextSpotterRCNN` and :class:`dld.modeling.DLDTextSpotter`)
summed up over a dataset.
"""
import logging
import math
from typing import Any, Dict, Mapping, Optional, Sequence

from tabulate import tabulate

__all__ = ["COST_OUTPUT_KEYS", "SCALE_COUNT_PREFIX", "cost_metrics", "cost_table", "read_cost"]

logger = logging.getLogger(__name__)

# Keys of a model's per-image output dict that carry its cost.
COST_OUTPUT_KEYS = ("selected_scale", "gflops", "gflops_backbone", "inference_time_s")
# Metric `scale_count_<s>`: images run at scale s (a flat key, so Detectron2's result printing and flattening work).
SCALE_COUNT_PREFIX = "scale_count_"


def read_cost(output: Mapping[str, Any]) -> Dict[str, float]:
    """The cost values present (and not None) in one image's output dict, as Python floats."""
    return {k: float(output[k]) for k in COST_OUTPUT_KEYS if output.get(k) is not None}


def _scale_label(scale: float) -> str:
    return f"{scale:g}"


def cost_metrics(records: Sequence[Mapping[str, Any]]) -> Dict[str, float]:
    """
    Cost metrics of a dataset from its per-image records (each holding what :func:`read_cost` found):

    * `mean_scale`: mean selected scale, and `scale_count_<s>`: number of images run at scale s;
    * `gflops`: mean GFLOPs per image of the whole model (its RoI heads at each image's real proposal and
      detection counts), `gflops_backbone`: of backbone + FPN + RPN (the paper's measure);
    * `images_per_s`: images / Σ inference_time_s.

    Each metric is given only when every image has its value: a value missing for some images is logged
    and its metrics are left out rather than computed on part of the dataset.
    """
    out: Dict[str, float] = {}
    if not records:
        return out
    values = {}
    for key in COST_OUTPUT_KEYS:
        found = [r[key] for r in records if r.get(key) is not None]
        if len(found) == len(records):
            values[key] = [float(v) for v in found]
        elif found:
            logger.warning(f"{key!r} is in the outputs of {len(found)} of {len(records)} images: not reported")
    if "selected_scale" in values:
        scales = values["selected_scale"]
        out["mean_scale"] = sum(scales) / len(scales)
        for s in sorted(set(scales), reverse=True):
            out[SCALE_COUNT_PREFIX + _scale_label(s)] = sum(1 for v in scales if v == s)
    for key in ("gflops", "gflops_backbone"):
        if key in values:
            out[key] = sum(values[key]) / len(values[key])
    if "inference_time_s" in values:
        total = sum(values["inference_time_s"])
        if total > 0 and math.isfinite(total):
            out["images_per_s"] = len(records) / total
    return out


def cost_table(metrics: Mapping[str, Any]) -> Optional[str]:
    """A one-row text table of the cost metrics in `metrics`, or None when there are none."""
    counts = [(k[len(SCALE_COUNT_PREFIX) :], v) for k, v in metrics.items() if k.startswith(SCALE_COUNT_PREFIX)]
    columns = [
        ("mean scale", metrics.get("mean_scale"), ".3f"),
        ("GFLOPs/image", metrics.get("gflops"), ".3f"),
        ("backbone GFLOPs/image", metrics.get("gflops_backbone"), ".3f"),
        ("images/s", metrics.get("images_per_s"), ".2f"),
    ]
    headers = [name for name, value, _ in columns if value is not None]
    row = [format(value, fmt) for _, value, fmt in columns if value is not None]
    if counts:
        headers.append("images per scale")
        row.append(", ".join(f"{s}: {int(n)}" for s, n in counts))
    if not headers:
        return None
    return tabulate([row], headers=headers, tablefmt="pipe", disable_numparse=True, colalign=["right"] * len(row))
