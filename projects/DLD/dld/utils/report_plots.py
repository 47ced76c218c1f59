"""
Figures of the DLD report: accuracy against cost per model, the scales a selector chose, and images drawn with
their predicted words. Drawn on matplotlib Figures with the Agg canvas (no pyplot, no display needed).
"""
import math
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .visualizer import TextVisualizer

__all__ = ["draw_example", "plot_accuracy_vs_cost", "plot_scale_histograms"]

_MISSED_COLOR = (0.95, 0.15, 0.15)


def _save(fig: Figure, path: str) -> None:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_accuracy_vs_cost(rows: Sequence[Mapping[str, Any]], path: str) -> None:
    """
    End-to-end H-mean (left) and detection H-mean (right) against GFLOPs per image, one point per row of the
    comparison table (rows without GFLOPs are left out). Fixed-scale rows are blue dots labelled by their name
    ("teacher x0.5" shortened to "x0.5"); DLD rows ("DLD..." names) have a marker and colour each, named in the
    legend, so that their labels never cover the fixed-scale rows they are compared with. Rows with a "curve"
    key (one DLD model at several test-time cost biases λ, tools/dld_table.py --bias-sweep) are joined by a line
    through that model's own row (λ = 0): what the one model offers over a range of budgets, without retraining.
    """
    fig = Figure(figsize=(11, 4.8))
    dynamic_styles = [("*", "tab:red"), ("P", "tab:orange"), ("X", "tab:purple"), ("D", "tab:brown")]
    for ax, key, label in zip(
        fig.subplots(1, 2), ("e2e_hmean", "det_hmean"), ("end-to-end H-mean (%)", "detection H-mean (%)")
    ):
        points = [r for r in rows if r.get("gflops") is not None and r.get(key) is not None]
        fixed = sorted((r for r in points if not str(r["name"]).startswith("DLD")), key=lambda r: r["gflops"])
        swept = [r for r in points if r.get("curve")]
        dynamic = [r for r in points if str(r["name"]).startswith("DLD") and not r.get("curve")]
        for curve in sorted({str(r["curve"]) for r in swept}):
            line = sorted([r for r in swept if r["curve"] == curve] + [r for r in dynamic if r["name"] == curve],
                          key=lambda r: r["gflops"])
            ax.plot([r["gflops"] for r in line], [r[key] for r in line], "-o", color="tab:green", markersize=4,
                    zorder=2, clip_on=False, label=f"{curve} over the test-time cost bias λ")
        if fixed:
            ax.scatter([r["gflops"] for r in fixed], [r[key] for r in fixed], s=45, color="tab:blue", zorder=3,
                       clip_on=False, label="teacher at a fixed scale" if all(
                           str(r["name"]).startswith("teacher ") for r in fixed) else "fixed scale")
        for i, r in enumerate(fixed):
            name = str(r["name"])
            # Two staggered heights: neighbours in GFLOPs often share an H-mean.
            ax.annotate(name[len("teacher "):] if name.startswith("teacher ") else name, (r["gflops"], r[key]),
                        textcoords="offset points", xytext=(-6, 6 + 9 * (i % 2)), fontsize=8)
        for j, r in enumerate(dynamic):
            marker, color = dynamic_styles[j % len(dynamic_styles)]
            ax.scatter(r["gflops"], r[key], marker=marker, s=130, color=color, edgecolors="black", linewidths=0.5,
                       zorder=4, clip_on=False, label=str(r["name"]))
        top = max([r[key] for r in points], default=0.0)
        ax.set_ylim(0.0, top * 1.15 + 5.0)
        ax.set_xlabel("GFLOPs per image")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if points:
            ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Accuracy against cost ({len(rows)} models)")
    _save(fig, path)


def plot_scale_histograms(
    selected: Mapping[str, Sequence[float]], path: str, candidate_scales: Sequence[float] = ()
) -> None:
    """One bar chart per model: how many images it ran at each scale (every candidate scale has a bar)."""
    fig = Figure(figsize=(5 * max(len(selected), 1), 4))
    axes = np.atleast_1d(fig.subplots(1, max(len(selected), 1)))
    for ax, (name, scales) in zip(axes, selected.items()):
        labels = sorted({float(s) for s in scales} | {float(s) for s in candidate_scales})
        counts = [sum(1 for s in scales if float(s) == v) for v in labels]
        ax.bar([f"{v:g}" for v in labels], counts, color="tab:red")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("selected scale")
        ax.set_ylabel("images")
        mean = f", mean {np.mean(scales):.3f}" if len(scales) else ""
        ax.set_title(f"{name}: {len(scales)} images{mean}", fontsize=10)
    _save(fig, path)


def draw_example(
    image_rgb: np.ndarray,
    words: Sequence[Mapping[str, Any]],
    caption: str,
    path: str,
    min_side: int = 512,
    missed: Sequence[Mapping[str, Any]] = (),
) -> None:
    """
    The image with its predicted words (`polygon`, `text`, `score` as in the evaluator's text_predictions.json)
    in green, the ground-truth words it `missed` (`polygon`, `text`) in red, and `caption` (e.g. the model and
    its selected scale) in the top-left corner; an image whose longer side is under `min_side` is enlarged by an
    integer factor so that the labels stay readable.
    """
    factor = max(1, math.ceil(min_side / max(image_rgb.shape[:2])))
    if factor > 1:
        image_rgb = cv2.resize(image_rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
    # The evaluator writes a non-finite value as null.
    words = [w for w in words if None not in np.asarray(w["polygon"], dtype=object).ravel()]
    vis = TextVisualizer(image_rgb)
    vis.draw_words(
        [np.asarray(w["polygon"], dtype=np.float32) * factor for w in missed],
        [str(w["text"]) for w in missed],
        colors=[_MISSED_COLOR] * len(missed),
        alpha=0.1,
    )
    vis.draw_words(
        [np.asarray(w["polygon"], dtype=np.float32) * factor for w in words],
        [w["text"] for w in words],
        [w["score"] if w["score"] is not None else float("nan") for w in words],
    )
    size = max(vis._default_font_size, 10)
    out = vis.draw_text(caption, (4, 4), font_size=size, color=(1.0, 0.9, 0.1), horizontal_alignment="left")
    out.save(path)
