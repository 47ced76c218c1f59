"""
Does the selector give small text more pixels? The scale a DLD model chose for each image against the size of
the image's text: each image's text height (median over its cared words of 2·area/perimeter of the word's
polygon, which is the height of a long thin word whatever its rotation or curvature) relative to the image's
longer side, images grouped into equal-count bins by that height, the mean selected scale per bin.
"""
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from shapely.geometry import Polygon
from tabulate import tabulate

__all__ = ["word_height", "image_text_heights", "scale_by_text_size", "scale_by_text_size_table"]


def word_height(polygon: Sequence[float]) -> float:
    """2·area/perimeter of a polygon given as flat x, y coordinates: the height of a long thin word."""
    ring = Polygon(np.asarray(polygon, dtype=np.float64).reshape(-1, 2))
    return 2.0 * ring.area / ring.length if ring.length > 0 else 0.0


def image_text_heights(dataset_dicts: Sequence[Mapping[str, Any]]) -> Dict[str, float]:
    """
    file_name -> median height of the image's cared words over its longer side. Images without a cared word
    with a polygon are left out.
    """
    heights = {}
    for record in dataset_dicts:
        words = [
            word_height(a["segmentation"][0])
            for a in record.get("annotations", [])
            if not a.get("iscrowd", 0) and isinstance(a.get("segmentation"), list) and a["segmentation"]
        ]
        words = [h for h in words if h > 0]
        if words:
            heights[record["file_name"]] = float(np.median(words)) / max(record["height"], record["width"])
    return heights


def scale_by_text_size(
    records: Sequence[Mapping[str, Any]], heights: Mapping[str, float], num_bins: int = 3
) -> List[Dict[str, Any]]:
    """
    Args:
        records: a DLD model's per-image predictions (text_predictions.json: file_name, selected_scale).
        heights: :func:`image_text_heights` of the same dataset.
        num_bins: groups of (nearly) equal image count, from the smallest text to the largest.

    Returns:
        one dict per bin, smallest text first: images, min_height, max_height (relative to the longer side),
        mean_scale.
    """
    pairs = sorted(
        (heights[r["file_name"]], float(r["selected_scale"]))
        for r in records
        if r.get("selected_scale") is not None and r["file_name"] in heights
    )
    rows = []
    for chunk in np.array_split(np.asarray(pairs, dtype=np.float64).reshape(-1, 2), num_bins):
        if len(chunk):
            rows.append({
                "images": int(len(chunk)),
                "min_height": float(chunk[:, 0].min()),
                "max_height": float(chunk[:, 0].max()),
                "mean_scale": float(chunk[:, 1].mean()),
            })
    return rows


def scale_by_text_size_table(by_model: Mapping[str, Sequence[Mapping[str, Any]]]) -> Optional[str]:
    """Markdown table of :func:`scale_by_text_size` rows per model name; None when there is nothing to show."""
    body = [
        [name, f"{r['min_height'] * 100:.1f}-{r['max_height'] * 100:.1f}%", str(r["images"]), f"{r['mean_scale']:.3f}"]
        for name, rows in by_model.items()
        for r in rows
    ]
    if not body:
        return None
    return tabulate(body, headers=["model", "text height / image side", "images", "mean selected scale"],
                    tablefmt="pipe", disable_numparse=True, colalign=["left", "right", "right", "right"])
