"""
The low-resolution input of a spotter (reference spec §2.4). DLD's student and the plain spotter's fixed test
scale (`TEST.FIXED_SCALE`) both go through :func:`resize_images`, so the two are comparable.
"""
from typing import Sequence

import torch.nn.functional as F
from detectron2.structures import ImageList

from .cost import lowres_size

__all__ = ["resize_images"]


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
