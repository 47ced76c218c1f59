"""TextSpotterRCNN: GeneralizedRCNN whose outputs are words (polygons and transcriptions)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from detectron2.config import configurable
from detectron2.modeling import (
    META_ARCH_REGISTRY,
    GeneralizedRCNN,
    build_backbone,
    build_proposal_generator,
    build_roi_heads,
)
from detectron2.structures import Instances

from ..data.charset import CharsetEncoder, build_charset_encoder
from .cost import FlopsTable
from .lowres import resize_images
from .pixel_reader import IMAGE_FEATURE, WithInputImage
from .postprocessing import text_postprocess
from ..utils.timing import synchronized_clock

__all__ = ["TextSpotterRCNN"]


@META_ARCH_REGISTRY.register()
class TextSpotterRCNN(GeneralizedRCNN):
    """
    Mask R-CNN text spotter (use with `TextROIHeads`). Training is GeneralizedRCNN's; inference returns, per
    image, `{"instances": Instances, "selected_scale", "gflops", "inference_time_s"}`: the Instances hold
    `pred_boxes, scores, pred_classes, pred_masks` (box-relative), `pred_polygons`, `pred_texts`,
    `text_scores`, in original-image coordinates.

    With `fixed_scale` s != 1 ("vanilla multi-scale" at test), each preprocessed image is resized by s before
    the backbone exactly as DLD's student input is (:func:`dld.modeling.lowres.resize_images`), and the words
    are mapped back to the original image. `gflops` is the fvcore count of the whole model at the size it ran
    with the image's real proposal and detection counts, `gflops_backbone` that of backbone + FPN + RPN (the
    paper's measure; :class:`dld.modeling.cost.FlopsTable`); `inference_time_s` the wall time of the batch's
    inference divided by its size.
    """

    @configurable
    def __init__(
        self,
        *,
        charset_encoder: CharsetEncoder,
        mask_threshold: float,
        polygon_epsilon: float,
        fixed_scale: float = 1.0,
        flops_num_proposals: Optional[int] = None,
        flops_num_detections: Optional[int] = None,
        **kwargs,
    ):
        """
        Args:
            fixed_scale: test-time scale of every image (1.0: as the mapper gives it).
            flops_num_proposals, flops_num_detections: fixed RoIs of the FLOPs count
                (:func:`dld.modeling.cost.count_flops`; None: the model's test-time caps).
        """
        super().__init__(**kwargs)
        if not fixed_scale > 0:
            raise ValueError(f"fixed_scale must be positive, got {fixed_scale}")
        self.charset_encoder = charset_encoder
        self.mask_threshold = mask_threshold
        self.polygon_epsilon = polygon_epsilon
        self.fixed_scale = float(fixed_scale)
        self.flops_table = FlopsTable(
            self, scales=(self.fixed_scale,), num_proposals=flops_num_proposals, num_detections=flops_num_detections
        )

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        if cfg.MODEL.TEXT_HEAD.IN_FEATURE == IMAGE_FEATURE:
            # The recognizer cuts words out of the input image: the backbone hands it on beside its features.
            backbone = WithInputImage(backbone)
        # GeneralizedRCNN.from_config, with the heads built on the (possibly wrapped) backbone's outputs.
        ret = {
            "backbone": backbone,
            "proposal_generator": build_proposal_generator(cfg, backbone.output_shape()),
            "roi_heads": build_roi_heads(cfg, backbone.output_shape()),
            "input_format": cfg.INPUT.FORMAT,
            "vis_period": cfg.VIS_PERIOD,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }
        cost = cfg.MODEL.DLD.COST
        ret.update(
            charset_encoder=build_charset_encoder(cfg),
            mask_threshold=cfg.MODEL.TEXT_HEAD.MASK_THRESHOLD,
            polygon_epsilon=cfg.MODEL.TEXT_HEAD.POLYGON_EPSILON,
            fixed_scale=cfg.TEST.FIXED_SCALE,
            # Counted like DLD's student, so that the GFLOPs of both meta-architectures are comparable.
            flops_num_proposals=cost.NUM_PROPOSALS if cost.NUM_PROPOSALS >= 0 else None,
            flops_num_detections=cost.NUM_DETECTIONS if cost.NUM_DETECTIONS >= 0 else None,
        )
        return ret

    def inference(
        self,
        batched_inputs: List[Dict[str, torch.Tensor]],
        detected_instances: Optional[List[Instances]] = None,
        do_postprocess: bool = True,
    ):
        """
        GeneralizedRCNN's inference at `fixed_scale`. Without postprocessing the raw results are in the
        coordinates of the network's (rescaled) input, as GeneralizedRCNN's are in those of its input.
        """
        assert not self.training
        start = synchronized_clock(self.device)
        images = self.preprocess_image(batched_inputs)
        net_images = images
        if self.fixed_scale != 1.0:
            net_images = resize_images(images, [self.fixed_scale] * len(images), self.backbone.size_divisibility)
        features = self.backbone(net_images.tensor)
        input_scales = [self.fixed_scale] * len(images)
        if detected_instances is None:
            if self.proposal_generator is not None:
                proposals, _ = self.proposal_generator(net_images, features, None)
            else:
                proposals = [x["proposals"].to(self.device) for x in batched_inputs]
            results, _ = self.roi_heads(net_images, features, proposals, None, input_scales=input_scales)
        else:
            if self.fixed_scale != 1.0:
                raise ValueError("detected_instances are in input-image coordinates: use them with fixed_scale 1.0")
            detected_instances = [x.to(self.device) for x in detected_instances]
            results = self.roi_heads.forward_with_given_boxes(features, detected_instances)
            proposals = [[] for _ in results]  # the box head did not run
        if not do_postprocess:
            return results
        outputs = self.postprocess_words(results, batched_inputs, images.image_sizes)
        seconds = (synchronized_clock(self.device) - start) / max(len(outputs), 1)
        for out, (h, w), p, r in zip(outputs, images.image_sizes, proposals, results):
            out["selected_scale"] = self.fixed_scale
            out.update(self.flops_table.output_cost(h, w, self.fixed_scale, len(p), len(r)))
            out["inference_time_s"] = seconds
        return outputs

    def postprocess_words(
        self,
        results: List[Instances],
        batched_inputs: List[Dict],
        image_sizes: Optional[Sequence[Tuple[int, int]]] = None,
    ) -> List[Dict[str, Instances]]:
        """
        Words of each image in the size of its input dict ("height", "width"); where those are absent, in
        `image_sizes` (the preprocessed images' sizes; None: the results' own size).
        """
        processed = []
        for i, (r, inp) in enumerate(zip(results, batched_inputs)):
            default = image_sizes[i] if image_sizes is not None else r.image_size
            height = inp.get("height", default[0])
            width = inp.get("width", default[1])
            words = text_postprocess(
                r, height, width, self.charset_encoder, self.mask_threshold, self.polygon_epsilon
            )
            processed.append({"instances": words})
        return processed
