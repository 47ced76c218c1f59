"""TextRecognitionWarmup: trains the spotter's backbone and recognition branch on word crops."""
from typing import Dict, List

import numpy as np
import torch
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.structures import Boxes, ImageList, Instances, PolygonMasks

from .meta_arch import TextSpotterRCNN
from .pixel_reader import IMAGE_FEATURE

__all__ = ["TextRecognitionWarmup"]


@META_ARCH_REGISTRY.register()
class TextRecognitionWarmup(TextSpotterRCNN):
    """
    The text spotter, trained on word crops (:class:`dld.data.WordCropMapper`, `INPUT.WORD_CROP.ENABLED`)
    with the recognition losses only: each crop goes through the backbone, and the recognition branch reads
    its word from P2 with the word's box and polygon mask, as in the joint training. From scratch, the
    attention recognizer reads only after ~10^5 word samples; crops deliver them several times faster than
    whole images. Its checkpoint has the spotter's keys, so the joint stage starts from it with
    `MODEL.WEIGHTS` (the detection heads are left as initialised). Inference is the spotter's. With the
    image reading path (`MODEL.TEXT_HEAD.IN_FEATURE "image"`) the backbone does not run: only the reader trains.
    """

    def forward(self, batched_inputs: List[Dict]):
        if not self.training:
            return super().forward(batched_inputs)
        if any("crops" not in x for x in batched_inputs):
            raise ValueError(
                "TextRecognitionWarmup trains on word crops: set INPUT.WORD_CROP.ENABLED True so that the "
                "training loader uses WordCropMapper"
            )
        crops = [c for x in batched_inputs for c in x["crops"]]
        polygons = [p for x in batched_inputs for p in x["crop_polygons"]]
        texts = [t for x in batched_inputs for t in x["crop_texts"]]
        if not crops:
            # No readable word in the batch: a zero loss that still reaches every recognition parameter.
            zero = sum(p.sum() for p in self.roi_heads.text_head.parameters()) * 0.0
            return {"loss_rec": zero}
        images = ImageList.from_tensors(
            [(c.to(self.device) - self.pixel_mean) / self.pixel_std for c in crops],
            self.backbone.size_divisibility,
        )
        if self.roi_heads.text_head.from_image:
            # The reader cuts words out of the input image: the detector's backbone has nothing to learn here.
            features = {IMAGE_FEATURE: images.tensor}
        else:
            features = self.backbone(images.tensor)
        targets = [
            self._crop_target(polygon, text, image_size)
            for polygon, text, image_size in zip(polygons, texts, images.image_sizes)
        ]
        return self.roi_heads.text_losses(features, targets)

    def _crop_target(self, polygon: np.ndarray, text: torch.Tensor, image_size) -> Instances:
        """The crop's one word: box of its polygon inside the canvas, polygon mask and token ids."""
        height, width = image_size
        x0, y0 = polygon[:, 0].clip(0, width).min(), polygon[:, 1].clip(0, height).min()
        x1, y1 = polygon[:, 0].clip(0, width).max(), polygon[:, 1].clip(0, height).max()
        target = Instances(image_size)
        target.gt_boxes = Boxes(torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32, device=self.device))
        target.gt_masks = PolygonMasks([[polygon.reshape(-1).astype(np.float64)]])
        target.gt_texts = text[None].to(self.device)
        return target
