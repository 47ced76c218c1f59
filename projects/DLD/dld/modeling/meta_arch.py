"""TextSpotterRCNN: GeneralizedRCNN whose outputs are words (polygons and transcriptions)."""
from typing import Dict, List, Optional

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.structures import Instances

from ..data.charset import CharsetEncoder
from .postprocessing import text_postprocess
from .text_head import build_charset_encoder

__all__ = ["TextSpotterRCNN"]


@META_ARCH_REGISTRY.register()
class TextSpotterRCNN(GeneralizedRCNN):
    """
    Mask R-CNN text spotter (use with `TextROIHeads`). Training is GeneralizedRCNN's; inference returns, per
    image, Instances with `pred_boxes, scores, pred_classes, pred_masks` (box-relative), `pred_polygons`,
    `pred_texts`, `text_scores`, in original-image coordinates.
    """

    @configurable
    def __init__(self, *, charset_encoder: CharsetEncoder, mask_threshold: float, polygon_epsilon: float, **kwargs):
        super().__init__(**kwargs)
        self.charset_encoder = charset_encoder
        self.mask_threshold = mask_threshold
        self.polygon_epsilon = polygon_epsilon

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        ret.update(
            charset_encoder=build_charset_encoder(cfg),
            mask_threshold=cfg.MODEL.TEXT_HEAD.MASK_THRESHOLD,
            polygon_epsilon=cfg.MODEL.TEXT_HEAD.POLYGON_EPSILON,
        )
        return ret

    def inference(
        self,
        batched_inputs: List[Dict[str, torch.Tensor]],
        detected_instances: Optional[List[Instances]] = None,
        do_postprocess: bool = True,
    ):
        results = super().inference(batched_inputs, detected_instances, do_postprocess=False)
        if not do_postprocess:
            return results
        return self.postprocess_words(results, batched_inputs)

    def postprocess_words(self, results: List[Instances], batched_inputs: List[Dict]) -> List[Dict[str, Instances]]:
        processed = []
        for r, inp in zip(results, batched_inputs):
            height = inp.get("height", r.image_size[0])
            width = inp.get("width", r.image_size[1])
            words = text_postprocess(
                r, height, width, self.charset_encoder, self.mask_threshold, self.polygon_epsilon
            )
            processed.append({"instances": words})
        return processed
