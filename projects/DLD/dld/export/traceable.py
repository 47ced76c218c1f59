"""
Trace-friendly views of a spotter's networks for `torch.jit.trace` / ONNX export: every shape that depends on the
data (image size, number of proposals, of detections, of words) stays an input-dependent value of the graph.

What stays outside the graph is what has no fixed-size tensor form or is cheap and data-dependent Python in the
eager model too: normalisation, the selector's thumbnail and the student's resize (torch, the eager functions),
the CTC collapse of the best path, strings, polygons from masks (OpenCV). The runner (`dld.export.runner`) does
those with the eager model's own functions.
"""
from typing import Dict, List

import torch
import torch.nn.functional as F
from detectron2.structures import ImageList, Instances
from torch import nn
from torchvision.ops import roi_align

from ..modeling.pixel_reader import ImageCropExtractor

__all__ = ["TraceableSpotter", "TraceableSelector", "crop_words_traceable", "SPOTTER_OUTPUTS"]

# Outputs of the spotter's graph, in order. Boxes, masks and text fields are in the coordinates of the graph's
# input image (the student's resized input); the runner maps them back to the original image.
SPOTTER_OUTPUTS = ("pred_boxes", "scores", "pred_classes", "pred_masks", "text_ids", "text_log_probs")


_DUMMY_BOX = torch.tensor([[0.0, 0.0, 8.0, 8.0]])


def crop_words_traceable(extractor: ImageCropExtractor, image: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """
    :class:`ImageCropExtractor` on one image without data-dependent branches: every box is cut both lying and
    upright and the vertical ones take the rotated cut (RoIAlign is computed per box, so each crop equals the
    eager one). `boxes`: [N, 4] XYXY in the image's pixels; returns [N, 3, out_h, out_w].
    """
    out_h, out_w = extractor.output_size
    boxes = boxes.to(image.dtype)
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    vertical = height > extractor.vertical_ratio * width
    pad = extractor.margin * torch.where(vertical, width, height)
    rois = torch.stack(
        [torch.zeros_like(pad), boxes[:, 0] - pad, boxes[:, 1] - pad, boxes[:, 2] + pad, boxes[:, 3] + pad], dim=1
    )
    lying = roi_align(image, rois, (out_h, out_w), 1.0, 2, aligned=True)
    upright = roi_align(image, rois, (out_w, out_h), 1.0, 2, aligned=True)
    upright = upright.flip(3).transpose(2, 3)  # torch.rot90(k=1, dims=(2, 3)), which ONNX lacks
    return torch.where(vertical[:, None, None, None], upright, lying)


def _greedy_attention(decoder: nn.Module, context: torch.Tensor):
    """The attention decoder's greedy decoding for all `num_steps` steps (no early exit: the same ids and sums)."""
    state = decoder._init_state(context)
    context_proj = decoder.i2h(context)
    prev = torch.zeros_like(context[:, 0, 0], dtype=torch.long) + decoder.go
    total = torch.zeros_like(context[:, 0, 0])
    finished = torch.zeros_like(prev, dtype=torch.bool)
    ids = []
    for _ in range(decoder.num_steps):
        step_logits, state = decoder._step(context, context_proj, state, prev)
        logp, token = F.log_softmax(step_logits, dim=-1).max(dim=-1)
        total = total + torch.where(finished, torch.zeros_like(logp), logp)
        ids.append(torch.where(finished, torch.zeros_like(token), token))
        finished = finished | (token == decoder.eos)
        prev = token
    return torch.stack(ids, dim=1), total


class TraceableSpotter(nn.Module):
    """
    Inference of a :class:`~dld.modeling.TextSpotterRCNN` on one normalised, unpadded image [1, 3, h, w]
    (the network's own input: for DLD the student's resized image), up to what has a tensor form:
    the Instances of `SPOTTER_OUTPUTS` (boxes, scores, classes, box-relative mask probabilities [N, 1, M, M],
    and the read words: CTC best paths [N, T] or attention ids [N, S], with their summed log-probabilities [N]).
    Greedy reading only (`MODEL.TEXT_HEAD.BEAM_WIDTH` 1).
    """

    def __init__(self, spotter: nn.Module):
        super().__init__()
        heads = spotter.roi_heads
        if int(getattr(heads, "beam_width", 1)) > 1:
            raise ValueError("export reads greedily: set MODEL.TEXT_HEAD.BEAM_WIDTH 1 (beam search loops in Python)")
        if not heads.text_head.from_image:
            raise NotImplementedError(
                "ONNX export reads words cut from the input image (MODEL.TEXT_HEAD.IN_FEATURE 'image'): the masked "
                "feature path crops each box in a Python loop"
            )
        self.spotter = spotter

    @property
    def decoder_type(self) -> str:
        return self.spotter.roi_heads.text_head.decoder_type

    def forward(self, image: torch.Tensor) -> Instances:
        model = self.spotter
        heads = model.roi_heads
        images = ImageList.from_tensors([image[0]], model.backbone.size_divisibility)
        features = model.backbone(images.tensor)
        proposals, _ = model.proposal_generator(images, features, None)
        instances = heads._forward_box(features, proposals)
        instances = heads._forward_mask(features, instances)
        out = instances[0]
        text_head = heads.text_head
        boxes = out.pred_boxes.tensor
        # One extra word box, dropped after reading: onnxruntime aborts the process on an LSTM over an empty
        # batch (an image without detections), and every op reads each word on its own.
        padded_boxes = torch.cat([boxes, _DUMMY_BOX.to(boxes)], dim=0)
        crops = crop_words_traceable(text_head.extractor.crops, features[heads.text_in_feature], padded_boxes)
        roi_features = text_head.extractor.cnn(crops)
        context = text_head.sequence_encoder(text_head.cnn(roi_features))
        if text_head.decoder_type == "ctc":
            log_probs = F.log_softmax(text_head.decoder(context), dim=-1)
            best, ids = log_probs.max(dim=-1)
            total = best.sum(dim=1)
        else:
            ids, total = _greedy_attention(text_head.decoder, context)
        ids, total = ids[:-1], total[:-1]
        result = Instances(out.image_size)
        result.pred_boxes = boxes
        result.scores = out.scores
        result.pred_classes = out.pred_classes
        result.pred_masks = out.pred_masks
        result.text_ids = ids
        result.text_log_probs = total
        return result


class TraceableSelector(nn.Module):
    """The selector's network on one padded thumbnail [1, 3, h', w'] → logits [1, K]."""

    def __init__(self, selector: nn.Module):
        super().__init__()
        self.selector = selector

    def forward(self, thumbnail: torch.Tensor) -> torch.Tensor:
        return self.selector._logits(thumbnail)


def flatten_outputs(instances: Instances) -> List[torch.Tensor]:
    """The tensors of a TraceableSpotter's Instances in `SPOTTER_OUTPUTS` order."""
    return [instances.get(name) for name in SPOTTER_OUTPUTS]


def outputs_to_dict(values) -> Dict[str, torch.Tensor]:
    return dict(zip(SPOTTER_OUTPUTS, values))
