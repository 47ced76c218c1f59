"""Turn raw spotter outputs into words: polygons from the box-relative masks, strings from token ids."""
import cv2
import numpy as np
import torch
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Instances

from ..data.charset import CharsetEncoder

__all__ = ["mask_to_polygon", "text_postprocess"]


def mask_to_polygon(mask: np.ndarray, box: np.ndarray, threshold: float = 0.5, epsilon: float = 0.01) -> np.ndarray:
    """
    Polygon of a box-relative mask in image coordinates: the largest external contour of the mask resized to
    its box, simplified with approxPolyDP (epsilon as a fraction of the perimeter).

    Args:
        mask: [M, M] mask probabilities relative to `box`.
        box: XYXY box in image pixels.

    Returns:
        [k, 2] float32 polygon (k >= 3), or an empty [0, 2] array when the mask has no foreground.
    """
    x1, y1, x2, y2 = [float(v) for v in box]
    width, height = max(int(np.ceil(x2 - x1)), 1), max(int(np.ceil(y2 - y1)), 1)
    resized = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    binary = (resized >= threshold).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2), dtype=np.float32)
    contour = max(contours, key=cv2.contourArea)
    poly = cv2.approxPolyDP(contour, epsilon * cv2.arcLength(contour, True), True).reshape(-1, 2)
    if len(poly) < 3:
        poly = cv2.boxPoints(cv2.minAreaRect(contour))
    # Contour points are pixel indices; +0.5 puts them on pixel centres, then scale the box grid to the box.
    poly = poly.astype(np.float32) + 0.5
    poly[:, 0] = x1 + poly[:, 0] * (x2 - x1) / width
    poly[:, 1] = y1 + poly[:, 1] * (y2 - y1) / height
    return poly


def text_postprocess(
    results: Instances,
    output_height: int,
    output_width: int,
    encoder: CharsetEncoder,
    mask_threshold: float = 0.5,
    polygon_epsilon: float = 0.01,
) -> Instances:
    """
    Rescale the raw outputs of the spotter to the output resolution and add `pred_polygons` (list of [k, 2]
    arrays) and `pred_texts` (list of str). Instances whose mask has no foreground are dropped.
    `pred_masks` stay box-relative ([N, 1, M, M] probabilities): pasting every mask at full resolution costs
    N·H·W memory and the polygons carry the same shape.
    """
    masks = results.pred_masks if results.has("pred_masks") else None
    raw = Instances(results.image_size, **{k: v for k, v in results.get_fields().items() if k != "pred_masks"})
    raw.raw_index = torch.arange(len(raw), device=raw.pred_boxes.device)
    out = detector_postprocess(raw, output_height, output_width)
    index = out.raw_index
    out.remove("raw_index")
    if masks is None:
        boxes = out.pred_boxes.tensor.detach().cpu().numpy()
        polygons = [np.array([[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]], np.float32) for b in boxes]
    else:
        out.pred_masks = masks[index]
        mask_np = out.pred_masks[:, 0].detach().float().cpu().numpy()
        boxes = out.pred_boxes.tensor.detach().cpu().numpy()
        polygons = [mask_to_polygon(m, b, mask_threshold, polygon_epsilon) for m, b in zip(mask_np, boxes)]
    keep = [i for i, p in enumerate(polygons) if len(p) >= 3]
    if len(keep) < len(out):
        out = out[torch.as_tensor(keep, dtype=torch.long, device=out.pred_boxes.device)]
        polygons = [polygons[i] for i in keep]
    out.pred_polygons = polygons
    out.pred_texts = encoder.decode_batch(out.pred_text_ids) if out.has("pred_text_ids") else [""] * len(out)
    return out

