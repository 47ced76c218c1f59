#!/usr/bin/env python
"""
The learning curve of a training run: a table (stage, iteration, training wall time, det H, E2E H, word
accuracy on ground-truth words) and a PNG of det and E2E H-mean (and word accuracy) against wall time, from the
`learning_curve.jsonl` that `TEST.CURVE.PERIOD` makes tools/train_net.py write (dld.engine.LearningCurveHook).

Several output folders are stages of one run, in order: each stage's wall time continues from the end of the
previous one, so the recognition warm-up and the joint training read as one curve.

    python tools/learning_curve.py output/synth/recognition_warmup_R_18 output/synth/text_spotter_R_18
"""
import argparse
import os
from typing import Dict, List, Optional

from dld.engine import CURVE_FILE, read_curve

COLUMNS = ("stage", "iteration", "wall_min", "det_hmean", "e2e_hmean", "word_accuracy")


def chain_stages(output_dirs: List[str]) -> List[Dict]:
    """The rows of every stage, with `wall_min`: minutes of training since the start of the first stage."""
    rows, offset = [], 0.0
    for output_dir in output_dirs:
        stage = read_curve(output_dir)
        if not stage:
            raise FileNotFoundError(
                f"{os.path.join(output_dir, CURVE_FILE)} is missing or empty: train with TEST.CURVE.PERIOD > 0"
            )
        name = os.path.basename(os.path.normpath(output_dir))
        for r in stage:
            rows.append(dict(r, stage=name, wall_min=(offset + r["train_wall_s"]) / 60))
        offset += stage[-1]["train_wall_s"]
    return rows


def format_table(rows: List[Dict]) -> str:
    """A Markdown table; H-means and accuracy in %, '-' where a stage does not measure a column."""
    def cell(row, key):
        value = row.get(key)
        if value is None:
            return "-"
        if key == "wall_min":
            return f"{value:.1f}"
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    header = "| stage | iteration | wall time (min) | det H | E2E H | word accuracy |"
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(cell(r, k) for k in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def plot_curve(rows: List[Dict], path: str, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, label, style in (
        ("det_hmean", "detection H-mean", "o-"),
        ("e2e_hmean", "end-to-end H-mean", "s-"),
        ("word_accuracy", "word accuracy (ground-truth boxes)", "^--"),
    ):
        points = [(r["wall_min"], r[key]) for r in rows if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points), style, label=label, markersize=4)
    stage_ends = {}
    for r in rows:
        stage_ends[r["stage"]] = r["wall_min"]
    for end in list(stage_ends.values())[:-1]:
        ax.axvline(end, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "learning curve")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> List[Dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dirs", nargs="+", help="training output folders, stages in order")
    parser.add_argument("--output", default="", help="PNG path (default: <last folder>/learning_curve.png)")
    parser.add_argument("--title", default="", help="title of the plot")
    args = parser.parse_args(argv)
    rows = chain_stages(args.output_dirs)
    table = format_table(rows)
    print(table)
    png = args.output or os.path.join(args.output_dirs[-1], "learning_curve.png")
    plot_curve(rows, png, args.title)
    with open(os.path.splitext(png)[0] + ".md", "w", encoding="utf-8") as f:
        f.write(table + "\n")
    print(f"Wrote {png} and {os.path.splitext(png)[0]}.md")
    return rows


if __name__ == "__main__":
    main()
