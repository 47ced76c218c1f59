"""
The report of a DLD run, from the comparison table (tools/dld_table.py's rows) and the per-image predictions of
each DLD model's evaluation (its text_predictions.json: file_name, selected_scale, words): report.md (the
paper's Table 1 with the run's context, the selected scales and the figures), report.json (``run``: the same
context; ``rows``: keys :data:`dld.evaluation.comparison.ROW_KEYS` only, numbers rounded to 4 decimals) and the
PNGs of :mod:`dld.utils.report_plots`.
"""
import json
import logging
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from shapely.geometry import Polygon
from tabulate import tabulate

from ..data import read_image_checked
from ..utils.report_plots import draw_example, plot_accuracy_vs_cost, plot_scale_histograms
from .comparison import ROW_KEYS, markdown_table
from .scale_by_text_size import scale_by_text_size, scale_by_text_size_table

__all__ = ["ground_truth_words", "missed_words", "pick_examples", "report_rows", "write_report"]

logger = logging.getLogger(__name__)


def report_rows(rows: Sequence[Mapping[str, Any]], ndigits: int = 4) -> List[Dict[str, Any]]:
    """The rows with exactly the keys of ROW_KEYS (a missing value is None), floats rounded to `ndigits`."""
    return [{k: round(v, ndigits) if isinstance(v, float) else v for k, v in ((k, r.get(k)) for k in ROW_KEYS)}
            for r in rows]


def ground_truth_words(dataset_dicts: Sequence[Mapping[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    """file_name -> the image's annotated words: `polygon` ([[x, y], ...]), `text` and `dont_care`."""
    out = {}
    for d in dataset_dicts:
        words = []
        for ann in d.get("annotations", []):
            if not ann.get("segmentation"):
                continue
            polygon = np.asarray(ann["segmentation"][0], dtype=np.float64).reshape(-1, 2)
            words.append({"polygon": polygon.tolist(), "text": ann.get("text", ""),
                          "dont_care": bool(ann.get("iscrowd", 0))})
        out[str(d["file_name"])] = words
    return out


def _shape(points) -> Optional[Polygon]:
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) < 3 or not np.isfinite(points).all():
        return None
    shape = Polygon(points)
    return shape if shape.is_valid else shape.buffer(0)


def missed_words(
    predicted: Sequence[Mapping[str, Any]], ground_truth: Sequence[Mapping[str, Any]], iou_threshold: float = 0.5
) -> List[Mapping[str, Any]]:
    """
    The ground-truth words (don't-care ones aside) that no predicted word reads: none overlaps it with IoU >=
    `iou_threshold` and the same transcription (case-insensitive), i.e. the end-to-end misses of the image.
    """
    shapes = [(_shape(w["polygon"]), str(w["text"]).casefold()) for w in predicted]
    missed = []
    for gt in ground_truth:
        if gt.get("dont_care"):
            continue
        gt_shape, text = _shape(gt["polygon"]), str(gt["text"]).casefold()
        if gt_shape is None:
            continue
        read = any(
            p is not None and t == text and p.intersection(gt_shape).area >= iou_threshold * p.union(gt_shape).area
            for p, t in shapes
        )
        if not read:
            missed.append(gt)
    return missed


def pick_examples(records: Sequence[Mapping[str, Any]], num: int) -> List[Mapping[str, Any]]:
    """
    Up to `num` records, first one for each distinct selected scale (from the lowest), then the next ones in
    order: the examples show the range of the selector's choices.
    """
    chosen: List[Mapping[str, Any]] = []
    for scale in sorted({r.get("selected_scale") for r in records if r.get("selected_scale") is not None}):
        chosen.append(next(r for r in records if r.get("selected_scale") == scale))
    chosen = chosen[:num]
    for r in records:
        if len(chosen) >= num:
            break
        if not any(r is c for c in chosen):
            chosen.append(r)
    return chosen


def _scale_table(selected: Mapping[str, Sequence[float]], candidate_scales: Sequence[float]) -> str:
    scales = sorted({float(s) for v in selected.values() for s in v} | {float(s) for s in candidate_scales},
                    reverse=True)
    body = [
        [name, str(len(v)), f"{sum(v) / len(v):.3f}" if v else "-"] + [str(sum(1 for x in v if x == s)) for s in scales]
        for name, v in selected.items()
    ]
    headers = ["model", "images", "mean scale"] + [f"x{s:g}" for s in scales]
    return tabulate(body, headers=headers, tablefmt="pipe", disable_numparse=True,
                    colalign=["left"] + ["right"] * (len(headers) - 1))


def write_report(
    rows: Sequence[Mapping[str, Any]],
    output_dir: str,
    predictions: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    header: Sequence[Tuple[str, str]] = (),
    candidate_scales: Sequence[float] = (),
    num_examples: int = 3,
    text_heights: Optional[Mapping[str, float]] = None,
    ground_truth: Optional[Mapping[str, Sequence[Mapping[str, Any]]]] = None,
) -> Dict[str, str]:
    """
    Write the report of a run to `output_dir`.

    Args:
        rows: the comparison table's rows (:func:`dld.evaluation.comparison.table_row`).
        predictions: for each DLD model (by its row name), the records of its evaluation's text_predictions.json.
        header: (label, value) pairs listed at the top of report.md (preset, command, machine, ...).
        candidate_scales: the selectors' candidate scales, so that scales never chosen show as 0.
        num_examples: images drawn per DLD model.
        text_heights: file_name -> the image's text height over its longer side
            (:func:`dld.evaluation.scale_by_text_size.image_text_heights`); adds the mean selected scale by text
            size to report.md and scale_by_text_size.json.

    Returns:
        what was written: "markdown", "json", "accuracy_vs_cost", "selected_scales", "scale_by_text_size" and
        "example_<i>" -> path.
    """
    os.makedirs(os.path.join(output_dir, "examples"), exist_ok=True)
    written = {"json": os.path.join(output_dir, "report.json"), "markdown": os.path.join(output_dir, "report.md"),
               "accuracy_vs_cost": os.path.join(output_dir, "accuracy_vs_cost.png")}
    with open(written["json"], "w") as f:
        run = {label: str(value).replace("`", "") for label, value in header}
        json.dump({"run": run, "rows": report_rows(rows)}, f, indent=2)
    plot_accuracy_vs_cost(rows, written["accuracy_vs_cost"])

    lines = ["# Dynamic Low-Resolution Distillation: report", ""]
    lines += [f"- **{label}**: {value}" for label, value in header]
    lines += [
        "", "## Accuracy and cost (the paper's Table 1)", "", markdown_table(rows), "",
        "H-means in %; the lexicon column is \"-\" where the dataset has no lexicon. GFLOPs per image: fvcore "
        "multiply-adds at the size each model ran (DLD: selector plus student). images/s: the evaluation's "
        "inference wall time on this machine, batch 1.", "",
        "![accuracy against cost](accuracy_vs_cost.png)", "",
    ]
    selected = {
        name: [float(r["selected_scale"]) for r in records if r.get("selected_scale") is not None]
        for name, records in predictions.items()
    }
    if selected:
        written["selected_scales"] = os.path.join(output_dir, "selected_scales.png")
        plot_scale_histograms(selected, written["selected_scales"], candidate_scales)
        lines += ["## Scales selected by DLD", "", "Images run at each scale:", "",
                  _scale_table(selected, candidate_scales), "", "![selected scales](selected_scales.png)", ""]
    by_size = {name: scale_by_text_size(records, text_heights) for name, records in predictions.items()
               } if text_heights else {}
    size_table = scale_by_text_size_table(by_size)
    if size_table:
        written["scale_by_text_size"] = os.path.join(output_dir, "scale_by_text_size.json")
        with open(written["scale_by_text_size"], "w") as f:
            json.dump(by_size, f, indent=2)
        lines += ["Mean selected scale by the size of the image's text (median height of its words over the "
                  "image's longer side; images in bins of equal count):", "", size_table, ""]
    if selected:
        lines += ["## Examples", "", "Predicted words (score >= the evaluator's threshold) at the scale the selector "
                  "chose for the image (top-left corner).", ""]
    for m, (name, records) in enumerate(predictions.items()):
        for r in pick_examples(records, num_examples):
            stem = os.path.splitext(os.path.basename(str(r["file_name"])))[0]
            rel = os.path.join("examples", f"model{m}_{stem}.png")
            try:
                image = read_image_checked(r["file_name"], "RGB")
            except OSError as e:
                logger.warning(f"No example drawn for {name}: {e}")
                continue
            scale = r.get("selected_scale")
            caption = f"{name}: scale {scale:g}" if scale is not None else name
            missed = missed_words(r["instances"], ground_truth.get(str(r["file_name"]), [])) if ground_truth else []
            if ground_truth:
                caption += f", {len(missed)} words missed (red)"
            draw_example(image, r["instances"], caption, os.path.join(output_dir, rel), missed=missed)
            written[f"example_{sum(k.startswith('example_') for k in written)}"] = os.path.join(output_dir, rel)
            lines.append(f"![{caption}, {stem}]({rel})")
    with open(written["markdown"], "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    return written
