"""
The low-resolution input of a spotter (reference spec §2.4), in one place: the size of an image at scale s, the
resized batch, its ground-truth words resized with it, and the padded size the network sees. DLD's student
(training and inference), the selector's per-scale passes, the plain spotter's fixed test scale
(`TEST.FIXED_SCALE`) and the FLOPs table all go through these functions, so that every path resizes the same way.
Outputs go back to the original image through the postprocessing's (input size → "height", "width") rescale.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch.nn.functional as F
from detectron2.structures import Boxes, ImageList, Instances, PolygonMasks

__all__ = ["lowres_size", "padded_size", "resize_images", "resize_instances", "resize_batch"]

_SIZE_EPS = 1e-6  # floor(h · s) of a product that should be an integer but lands just below it


def lowres_size(height: int, width: int, scale: float) -> Tuple[int, int]:
    """Size of the input at `scale`: floor(h · s) × floor(w · s), at least 1 (spec §2.4)."""
    return (
        max(1, int(math.floor(height * scale + _SIZE_EPS))),
        max(1, int(math.floor(width * scale + _SIZE_EPS))),
    )


def padded_size(height: int, width: int, divisibility: int) -> Tuple[int, int]:
    """(H, W) rounded up to a multiple of `divisibility` (unchanged when it is 0 or 1)."""
    if divisibility <= 1:
        return int(height), int(width)
    return (
        int(math.ceil(height / divisibility) * divisibility),
        int(math.ceil(width / divisibility) * divisibility),
    )


def resize_images(images: ImageList, scales: Sequence[float], size_divisibility: int) -> ImageList:
    """
    Each image of the batch, cropped to its own size (h, w), resized to `lowres_size(h, w, s)` with its own
    scale s: bilinear, `align_corners=False`, no antialiasing, on the already normalised tensor. The resized
    images are batched again, zero-padded to a multiple of `size_divisibility`.
    """
    if len(scales) != len(images):
        raise ValueError(f"{len(scales)} scales for a batch of {len(images)} images")
    resized = []
    for i, ((h, w), s) in enumerate(zip(images.image_sizes, scales)):
        nh, nw = lowres_size(h, w, s)
        x = images.tensor[i : i + 1, :, :h, :w]
        resized.append(F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)[0])
    return ImageList.from_tensors(resized, size_divisibility)


def resize_instances(instances: Instances, from_size: Tuple[int, int], to_size: Tuple[int, int]) -> Instances:
    """
    Ground-truth words (`gt_boxes`, `gt_masks` polygons, `gt_classes`, `gt_texts`) of an image resized from
    `from_size` to `to_size` (h, w): coordinates scaled by w'/w and h'/h, the exact factors of
    :func:`lowres_size`'s floored size.
    """
    (h, w), (nh, nw) = from_size, to_size
    sx, sy = nw / w, nh / h
    out = Instances(tuple(to_size))
    boxes = instances.gt_boxes.tensor.clone()
    boxes[:, 0::2] *= sx
    boxes[:, 1::2] *= sy
    out.gt_boxes = Boxes(boxes)
    out.gt_classes = instances.gt_classes
    polys = []
    for parts in instances.gt_masks.polygons:
        scaled = []
        for p in parts:
            q = p.copy()
            q[0::2] *= sx
            q[1::2] *= sy
            scaled.append(q)
        polys.append(scaled)
    out.gt_masks = PolygonMasks(polys)
    out.gt_texts = instances.gt_texts
    return out


def resize_batch(
    images: ImageList,
    scales: Sequence[float],
    size_divisibility: int,
    targets: Optional[List[Instances]] = None,
) -> Tuple[ImageList, Optional[List[Instances]]]:
    """:func:`resize_images`, and each image's targets (sized as the unresized images) resized with it."""
    batch = resize_images(images, scales, size_divisibility)
    if targets is None:
        return batch, None
    resized = [
        resize_instances(t, size, lowres_size(*size, s)) for t, size, s in zip(targets, images.image_sizes, scales)
    ]
    return batch, resized
