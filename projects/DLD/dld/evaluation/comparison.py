"""
The comparison table of the paper (reference spec §7.1): one row per model (the teacher at full resolution,
the teacher at fixed scales, DLD models), accuracy beside cost, as JSON and Markdown.
"""
import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from detectron2.utils.file_io import PathManager
from tabulate import tabulate

__all__ = ["LEXICON_PREFERENCE", "ROW_KEYS", "markdown_table", "pick_lexicon", "table_row", "write_table"]

# Keys of each row, in column order.
ROW_KEYS = (
    "name",
    "det_hmean",
    "e2e_hmean",
    "e2e_hmean_lexicon",
    "word_spotting_hmean",
    "gflops",
    "gflops_backbone",
    "images_per_s",
    "mean_scale",
)
# The lexicon of the "e2e with lexicon" column, first found: ICDAR's generic, else Total-Text's full.
LEXICON_PREFERENCE = ("generic", "full")
_PERCENT_KEYS = ("det_hmean", "e2e_hmean", "e2e_hmean_lexicon", "word_spotting_hmean")
_HEADERS = {
    "name": "model",
    "det_hmean": "det H",
    "e2e_hmean": "e2e H",
    "e2e_hmean_lexicon": "e2e H (lexicon)",
    "word_spotting_hmean": "word spotting H",
    "gflops": "GFLOPs/image",
    "gflops_backbone": "backbone GFLOPs/image",
    "images_per_s": "images/s",
    "mean_scale": "mean scale",
}
_FORMATS = {"gflops": ".3f", "gflops_backbone": ".3f", "images_per_s": ".2f", "mean_scale": ".3f"}


def pick_lexicon(metrics: Mapping[str, Any], preference: Sequence[str] = LEXICON_PREFERENCE) -> Optional[str]:
    """The first lexicon kind of `preference` whose end-to-end H-mean is in `metrics`, or None."""
    for kind in preference:
        if f"e2e_hmean_{kind}" in metrics:
            return kind
    return None


def table_row(name: str, metrics: Mapping[str, Any], lexicon: Optional[str] = None) -> Dict[str, Any]:
    """
    One row of the table from :class:`dld.evaluation.TextSpottingEvaluator`'s metrics: the keys of
    :data:`ROW_KEYS` plus `lexicon` (the kind behind `e2e_hmean_lexicon`). H-means are in % (the metrics'
    fractions times 100), `gflops` (whole model) and `gflops_backbone` (backbone + FPN + RPN, the paper's
    measure) per image; a value the metrics do not have is None.

    Args:
        lexicon: the lexicon kind of `e2e_hmean_lexicon`; None picks one with :func:`pick_lexicon`.
    """
    if lexicon is None:
        lexicon = pick_lexicon(metrics)
    sources = {
        "det_hmean": "det_hmean",
        "e2e_hmean": "e2e_hmean",
        "e2e_hmean_lexicon": f"e2e_hmean_{lexicon}" if lexicon else None,
        "word_spotting_hmean": "ws_hmean",
        "gflops": "gflops",
        "gflops_backbone": "gflops_backbone",
        "images_per_s": "images_per_s",
        "mean_scale": "mean_scale",
    }
    row: Dict[str, Any] = {"name": name}
    for key, source in sources.items():
        value = metrics.get(source) if source else None
        if value is not None:
            value = float(value) * (100.0 if key in _PERCENT_KEYS else 1.0)
        row[key] = value
    row["lexicon"] = lexicon if row["e2e_hmean_lexicon"] is not None else None
    return row


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a Markdown table (H-means in % with 2 decimals; a missing value is "-")."""
    kinds = sorted({r.get("lexicon") for r in rows if r.get("lexicon")})
    headers = dict(_HEADERS)
    if len(kinds) == 1:
        headers["e2e_hmean_lexicon"] = f"e2e H ({kinds[0]})"
    body = []
    for r in rows:
        cells = []
        for key in ROW_KEYS:
            value = r.get(key)
            if key == "name":
                cells.append(str(value))
            elif value is None:
                cells.append("-")
            else:
                cells.append(format(value, _FORMATS.get(key, ".2f")))
        body.append(cells)
    return tabulate(
        body,
        headers=[headers[k] for k in ROW_KEYS],
        tablefmt="pipe",
        disable_numparse=True,
        colalign=["left"] + ["right"] * (len(ROW_KEYS) - 1),
    )


def write_table(rows: Sequence[Mapping[str, Any]], output_dir: str, stem: str = "dld_table") -> Tuple[str, str]:
    """Write `<stem>.json` (a list of the rows) and `<stem>.md` to `output_dir`; returns their paths."""
    PathManager.mkdirs(output_dir)
    json_path = os.path.join(output_dir, f"{stem}.json")
    md_path = os.path.join(output_dir, f"{stem}.md")
    with PathManager.open(json_path, "w") as f:
        json.dump([dict(r) for r in rows], f, indent=2)
    with PathManager.open(md_path, "w") as f:
        f.write(markdown_table(rows) + "\n")
    return json_path, md_path

