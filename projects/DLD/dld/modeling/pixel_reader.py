"""
The CPU recipe's reading path: each word cut out of the network's input image (not a feature map) and read by
a plain CRNN stem, as two-stage spotters do. It shares nothing with the detector, so it learns as fast as a
recognizer trained on rectified crops, and it still depends on resolution: a word cut from a downscaled image
is blurred when it is resampled to the crop size.
"""
from typing import Dict, List, Tuple

import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling import Backbone
from torch import nn
from torchvision.ops import roi_align

__all__ = ["ImageCropExtractor", "ImageWordFeatures", "PixelCNN", "WithInputImage", "IMAGE_FEATURE"]

# Name of the network's input among the backbone's outputs (MODEL.TEXT_HEAD.IN_FEATURE "image").
IMAGE_FEATURE = "image"


class WithInputImage(Backbone):
    """A backbone whose outputs also hold its (normalised, padded) input image as "image" at stride 1."""

    def __init__(self, body: Backbone):
        super().__init__()
        self.body = body

    @property
    def size_divisibility(self) -> int:
        return self.body.size_divisibility

    @property
    def padding_constraints(self) -> Dict[str, int]:
        return self.body.padding_constraints

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        outputs = dict(self.body(x))
        outputs[IMAGE_FEATURE] = x
        return outputs

    def output_shape(self) -> Dict[str, ShapeSpec]:
        shapes = dict(self.body.output_shape())
        shapes[IMAGE_FEATURE] = ShapeSpec(channels=3, stride=1)
        return shapes


class ImageCropExtractor(nn.Module):
    """
    Crops each box (grown by `margin` times its height on every side) out of the image with RoIAlign and
    resamples it to `output_size` (height, width). Boxes taller than `vertical_ratio` times their width are
    read top to bottom: cut at the transposed size and rotated to lie left to right.
    """

    def __init__(self, output_size: Tuple[int, int] = (32, 128), margin: float = 0.1, vertical_ratio: float = 1.5):
        super().__init__()
        self.output_size = tuple(int(v) for v in output_size)
        self.margin = margin
        self.vertical_ratio = vertical_ratio

    def forward(self, image: torch.Tensor, boxes: List[torch.Tensor]) -> torch.Tensor:
        """
        Args:
            image: [B, 3, H, W] the network's input.
            boxes: per image, [n_i, 4] XYXY boxes in the input's pixels.

        Returns:
            [sum n_i, 3, out_h, out_w] crops, in the order of `boxes`.
        """
        out_h, out_w = self.output_size
        rois = torch.cat(
            [torch.cat([b.new_full((len(b), 1), i), b.to(image.dtype)], dim=1) for i, b in enumerate(boxes)]
        ) if boxes else image.new_zeros((0, 5))
        rois = rois.to(image.device, image.dtype)
        crops = image.new_zeros((len(rois), image.shape[1], out_h, out_w))
        if len(rois) == 0:
            return crops
        width = rois[:, 3] - rois[:, 1]
        height = rois[:, 4] - rois[:, 2]
        vertical = height > self.vertical_ratio * width
        pad = self.margin * torch.where(vertical, width, height)
        grown = torch.stack(
            [rois[:, 0], rois[:, 1] - pad, rois[:, 2] - pad, rois[:, 3] + pad, rois[:, 4] + pad], dim=1
        )
        horizontal = ~vertical
        if bool(horizontal.any()):
            crops[horizontal] = roi_align(image, grown[horizontal], (out_h, out_w), 1.0, 2, aligned=True)
        if bool(vertical.any()):
            upright = roi_align(image, grown[vertical], (out_w, out_h), 1.0, 2, aligned=True)
            # Top to bottom becomes left to right: rotate a quarter turn counter-clockwise.
            crops[vertical] = torch.rot90(upright, k=1, dims=(2, 3))
        return crops


class PixelCNN(nn.Module):
    """
    The reference CRNN's stem on [N, 3, 32, W] crops: five 3x3 conv + BatchNorm + ReLU blocks (widths 32, 64,
    then `channels`), pooling the height to 1 and the width by 4: [N, channels, 1, W / 4].
    """

    def __init__(self, channels: int, in_channels: int = 3):
        super().__init__()
        layers = []
        widths = (32, 64, channels, channels, channels)
        pools = (2, 2, (2, 1), (2, 1), (2, 1))
        cin = in_channels
        for cout, pool in zip(widths, pools):
            layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            layers.append(nn.MaxPool2d(pool))
            cin = cout
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ImageWordFeatures(nn.Module):
    """The words' crops of the input image (:class:`ImageCropExtractor`) through :class:`PixelCNN`."""

    def __init__(self, crops: ImageCropExtractor, cnn: PixelCNN):
        super().__init__()
        self.crops = crops
        self.cnn = cnn

    def forward(self, image: torch.Tensor, boxes: List[torch.Tensor]) -> torch.Tensor:
        return self.cnn(self.crops(image, boxes))
