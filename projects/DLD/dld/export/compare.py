"""Does an exported model answer as the eager one does? Word by word: count, boxes, transcriptions, scale."""
from typing import Dict, List, Sequence, Tuple

import torch
from detectron2.structures import pairwise_iou

__all__ = ["compare_outputs", "outputs_agree"]


def compare_outputs(eager: Sequence[Dict], exported: Sequence[Dict]) -> List[Dict]:
    """
    Per image: `words` (eager, exported), `min_iou`: each eager word is paired with the exported word of highest
    box IoU (one to one, best pairs first: equal scores may be listed in another order) and the lowest IoU of the
    pairs is kept (1.0 without words, 0.0 when the counts differ); `same_texts`: the paired words read the same;
    and the selected scales.
    """
    rows = []
    for a, b in zip(eager, exported):
        wa, wb = a["instances"], b["instances"]
        same_count = len(wa) == len(wb)
        pairs = _pair_by_iou(wa, wb) if same_count else []
        min_iou = min((iou for _, _, iou in pairs), default=1.0 if same_count else 0.0)
        texts_a, texts_b = list(wa.pred_texts), list(wb.pred_texts)
        rows.append(
            {
                "words_eager": len(wa),
                "words_exported": len(wb),
                "min_iou": float(min_iou),
                "same_texts": same_count and all(texts_a[i] == texts_b[j] for i, j, _ in pairs),
                "scale_eager": float(a.get("selected_scale", 1.0)),
                "scale_exported": float(b.get("selected_scale", 1.0)),
            }
        )
    return rows


def _pair_by_iou(wa, wb) -> List[Tuple[int, int, float]]:
    if not len(wa):
        return []
    iou = pairwise_iou(wa.pred_boxes.to("cpu"), wb.pred_boxes.to("cpu"))
    pairs, used_a, used_b = [], set(), set()
    for flat in torch.argsort(iou.flatten(), descending=True).tolist():
        i, j = divmod(flat, iou.shape[1])
        if i not in used_a and j not in used_b:
            pairs.append((i, j, float(iou[i, j])))
            used_a.add(i)
            used_b.add(j)
    return pairs


def outputs_agree(row: Dict, min_iou: float = 0.99) -> bool:
    """The same number of words, each box with IoU >= `min_iou`, the same transcriptions, the same scale."""
    return (
        row["words_eager"] == row["words_exported"]
        and row["min_iou"] >= min_iou
        and row["same_texts"]
        and row["scale_eager"] == row["scale_exported"]
    )
