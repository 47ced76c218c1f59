"""TextROIHeads: Mask R-CNN's StandardROIHeads plus the attention recognition branch."""
import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, StandardROIHeads
from detectron2.structures import ImageList, Instances
from torch import nn

from ..data.charset import CharsetEncoder, build_charset_encoder
from .ctc import CTCDecoder, ctc_loss_on_tokens
from .pixel_reader import IMAGE_FEATURE, ImageCropExtractor, ImageWordFeatures, PixelCNN
from .recognizer import AttentionDecoder, LightCRNN, MaskedRoIExtractor, SequenceEncoder

__all__ = ["TextRecognitionHead", "TextROIHeads", "RecognitionOutputs"]

logger = logging.getLogger(__name__)

# Side of the box-relative masks that guide recognition on ground truth (predicted masks are 28x28).
_GT_MASK_SIZE = 28


@dataclass
class RecognitionOutputs:
    """Intermediate tensors of one recognition pass, kept for distillation."""

    roi_features: torch.Tensor  # [N, C, 8, 32] masked RoI features
    context: torch.Tensor  # [N, T, C] encoder hidden states
    logits: Optional[torch.Tensor] = None  # [N, S, num_classes] teacher-forced logits


class TextRecognitionHead(nn.Module):
    """
    Reads words from boxes. Two feature paths (`MODEL.TEXT_HEAD.IN_FEATURE`): masked RoI features of a
    backbone level → LightCRNN (the paper), or the words cut out of the input image → the CRNN stem of
    :class:`PixelCNN` ("image", the CPU recipe). Then a BiLSTM encoder and a decoder
    (`MODEL.TEXT_HEAD.DECODER`): the attention decoder (the paper) or a CTC classifier.
    """

    @configurable
    def __init__(
        self,
        *,
        in_channels: int,
        channels: int,
        pooler_resolution: Tuple[int, int],
        stride: int,
        vertical_ratio: float,
        mask_threshold: float,
        encoder: CharsetEncoder,
        ctc_loss_weight: float = 0.0,
        from_image: bool = False,
        crop_size: Tuple[int, int] = (32, 128),
        crop_margin: float = 0.1,
        decoder: str = "attention",
        encoder_layers: int = 2,
    ):
        super().__init__()
        if decoder not in ("attention", "ctc"):
            raise ValueError(f"MODEL.TEXT_HEAD.DECODER must be 'attention' or 'ctc', got {decoder!r}")
        self.charset_encoder = encoder
        self.decoder_type = decoder
        self.ctc_loss_weight = ctc_loss_weight if decoder == "attention" else 0.0
        # Auxiliary CTC classifier on the encoder states (training only): it aligns the encoder with the
        # characters early, which the attention decoder otherwise takes very many samples to learn from scratch.
        self.ctc_classifier = nn.Linear(channels, encoder.num_classes) if self.ctc_loss_weight > 0 else None
        self.from_image = from_image
        if from_image:
            self.extractor = ImageWordFeatures(
                ImageCropExtractor(crop_size, crop_margin, vertical_ratio), PixelCNN(channels, in_channels)
            )
            self.cnn = ColumnFeatures()
        else:
            self.extractor = MaskedRoIExtractor(
                in_channels, channels, pooler_resolution, stride, vertical_ratio, mask_threshold
            )
            self.cnn = LightCRNN(channels, channels)
        self.sequence_encoder = SequenceEncoder(channels, encoder_layers)
        if decoder == "ctc":
            self.decoder = CTCDecoder(channels, encoder.num_classes, encoder.num_steps)
        else:
            self.decoder = AttentionDecoder(channels, encoder.num_classes, encoder.num_steps)

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec):
        head = cfg.MODEL.TEXT_HEAD
        return {
            "in_channels": input_shape.channels,
            "channels": head.CHANNELS,
            "pooler_resolution": tuple(head.POOLER_RESOLUTION),
            "stride": input_shape.stride,
            "vertical_ratio": head.VERTICAL_RATIO,
            "mask_threshold": head.MASK_THRESHOLD,
            "encoder": build_charset_encoder(cfg),
            "ctc_loss_weight": head.CTC_LOSS_WEIGHT,
            "from_image": head.IN_FEATURE == IMAGE_FEATURE,
            "crop_size": tuple(head.CROP_SIZE),
            "crop_margin": head.CROP_MARGIN,
            "decoder": head.DECODER,
            "encoder_layers": head.ENCODER_LAYERS,
        }

    def encode(
        self,
        feature: torch.Tensor,
        boxes: List[torch.Tensor],
        masks: List[torch.Tensor],
        input_scales: Optional[Sequence[float]] = None,
    ) -> RecognitionOutputs:
        """
        `masks` guide the feature path only; the image path reads the whole (grown) box. `input_scales`: per
        image, the scale of the network's input against the original image (None: 1), so that the feature
        path's context margin covers the same part of the original image at every scale.
        """
        if self.from_image:
            roi_features = self.extractor(feature, boxes)
        else:
            roi_features = self.extractor(feature, boxes, masks, input_scales)
        context = self.sequence_encoder(self.cnn(roi_features))
        return RecognitionOutputs(roi_features=roi_features, context=context)

    def forward_train(
        self,
        feature: torch.Tensor,
        boxes: List[torch.Tensor],
        masks: List[torch.Tensor],
        targets: torch.Tensor,
        input_scales: Optional[Sequence[float]] = None,
    ) -> RecognitionOutputs:
        """Teacher-forced pass on `targets` ([N, S] token ids, rows in the order of `boxes`)."""
        outputs = self.encode(feature, boxes, masks, input_scales)
        outputs.logits = self.decoder(outputs.context, targets)
        return outputs

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """
        Attention: token-level cross-entropy over non-padding targets ([s] included), averaged over the batch.
        CTC: the CTC loss of the columns' logits, averaged over the words.
        """
        if logits.numel() == 0 or not bool((targets != CharsetEncoder.PAD).any()):
            return logits.sum() * 0.0
        if self.decoder_type == "ctc":
            return self.decoder.loss(logits, targets)
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=CharsetEncoder.PAD
        )

    def ctc_loss(self, context: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """CTC loss of the auxiliary classifier (blank = token 0, never a character) on the words' characters."""
        if self.ctc_classifier is None:
            return context.sum() * 0.0
        return ctc_loss_on_tokens(F.log_softmax(self.ctc_classifier(context), dim=-1), targets)

    def recognize(self, context: torch.Tensor, beam_width: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
        """Best sequence per instance: token ids [N, S] and its log-probability [N]."""
        if beam_width <= 1:
            return self.decoder.greedy(context)
        sequences, log_probs = self.decoder.beam_search(context, beam_width)
        return sequences[:, 0], log_probs[:, 0]

    def text_scores(self, ids: torch.Tensor, log_probs: torch.Tensor, num_columns: int) -> torch.Tensor:
        """
        Confidence in [0, 1] of each read word: the geometric-mean probability of the decoded tokens
        (attention) or of the encoder's columns along the best path (CTC).
        """
        if not len(ids):
            return log_probs
        per = num_columns if self.decoder_type == "ctc" else _sequence_lengths(ids).to(log_probs.dtype)
        return torch.exp(log_probs / per)


class ColumnFeatures(nn.Module):
    """[N, C, H, W] → [N, W, C]: the columns of a feature map, averaged over its height, as a sequence."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=2).permute(0, 2, 1).contiguous()


def _sequence_lengths(ids: torch.Tensor) -> torch.Tensor:
    """Tokens up to and including the first [s] (all of them when there is none)."""
    is_eos = ids == CharsetEncoder.EOS
    first_eos = torch.where(is_eos.any(dim=1), is_eos.float().argmax(dim=1), ids.new_full((ids.shape[0],), -1))
    return torch.where(first_eos >= 0, first_eos + 1, (ids != CharsetEncoder.PAD).sum(dim=1)).clamp(min=1)


@ROI_HEADS_REGISTRY.register()
class TextROIHeads(StandardROIHeads):
    """
    StandardROIHeads with a recognition branch. The branch trains on ground-truth boxes and masks of the
    words that can be encoded, and reads the predicted boxes and masks at test time.

    Inference adds to each Instances: `pred_text_ids` ([N, S] token ids) and `text_scores` ([N], the
    geometric-mean probability of the decoded tokens). The meta-architecture turns ids into strings.
    """

    @configurable
    def __init__(
        self,
        *,
        text_in_feature: str,
        text_head: TextRecognitionHead,
        text_loss_weight: float,
        beam_width: int,
        jitter_copies: int = 0,
        jitter_ratio: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.text_in_feature = text_in_feature
        self.text_head = text_head
        self.text_loss_weight = text_loss_weight
        self.beam_width = beam_width
        self.jitter_copies = jitter_copies
        self.jitter_ratio = jitter_ratio

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        ret = super().from_config(cfg, input_shape)
        ret.update(cls._init_text_head(cfg, input_shape))
        return ret

    @classmethod
    def _init_text_head(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        in_feature = cfg.MODEL.TEXT_HEAD.IN_FEATURE
        if in_feature not in input_shape:
            raise ValueError(
                f"MODEL.TEXT_HEAD.IN_FEATURE={in_feature!r} is not a backbone output ({sorted(input_shape)})"
            )
        return {
            "text_in_feature": in_feature,
            "text_head": TextRecognitionHead(cfg, input_shape[in_feature]),
            "text_loss_weight": cfg.MODEL.TEXT_HEAD.LOSS_WEIGHT,
            "beam_width": cfg.MODEL.TEXT_HEAD.BEAM_WIDTH,
            "jitter_copies": cfg.MODEL.TEXT_HEAD.TRAIN_JITTER_COPIES,
            "jitter_ratio": cfg.MODEL.TEXT_HEAD.TRAIN_JITTER_RATIO,
        }

    def forward(
        self,
        images: ImageList,
        features: Dict[str, torch.Tensor],
        proposals: List[Instances],
        targets: Optional[List[Instances]] = None,
        input_scales: Optional[Sequence[float]] = None,
    ):
        """
        StandardROIHeads' forward plus recognition. `input_scales`: per image, the scale of the network's input
        against the original image (None: 1; see :meth:`TextRecognitionHead.encode`).
        """
        if not self.training:
            instances = self._forward_box(features, proposals)
            return self.forward_with_given_boxes(features, instances, input_scales), {}
        proposals, losses, _ = self.forward_train_with_recognition(images, features, proposals, targets, input_scales)
        return proposals, losses

    def forward_train_with_recognition(
        self,
        images: ImageList,
        features: Dict[str, torch.Tensor],
        proposals: List[Instances],
        targets: List[Instances],
        input_scales: Optional[Sequence[float]] = None,
    ) -> Tuple[List[Instances], Dict[str, torch.Tensor], RecognitionOutputs]:
        """The training forward, plus the recognition outputs of the ground-truth words (for distillation)."""
        proposals, losses = super().forward(images, features, proposals, targets)
        text_losses, outputs = self.text_losses_and_outputs(features, targets, input_scales)
        losses.update(text_losses)
        return proposals, losses, outputs

    def text_losses(
        self,
        features: Dict[str, torch.Tensor],
        targets: List[Instances],
        input_scales: Optional[Sequence[float]] = None,
    ) -> Dict[str, torch.Tensor]:
        """Weighted recognition losses (`loss_rec`, and `loss_rec_ctc` when on) on the ground-truth words."""
        return self.text_losses_and_outputs(features, targets, input_scales)[0]

    def text_losses_and_outputs(
        self,
        features: Dict[str, torch.Tensor],
        targets: List[Instances],
        input_scales: Optional[Sequence[float]] = None,
    ) -> Tuple[Dict[str, torch.Tensor], RecognitionOutputs]:
        """
        :meth:`text_losses`, and the recognition outputs of the ground-truth words themselves (without their
        jittered copies), in the order of :meth:`forward_text_train` without jitter: what distillation needs,
        without a second pass.
        """
        outputs, text_targets = self.forward_text_train(features, targets, self.jitter_copies, input_scales)
        losses = {"loss_rec": self.text_loss_weight * self.text_head.loss(outputs.logits, text_targets)}
        if self.text_head.ctc_classifier is not None:
            losses["loss_rec_ctc"] = self.text_head.ctc_loss_weight * self.text_head.ctc_loss(
                outputs.context, text_targets
            )
        if self.jitter_copies > 0:
            rows = self.original_rows(targets, self.jitter_copies).to(outputs.context.device)
            outputs = RecognitionOutputs(
                roi_features=outputs.roi_features[rows], context=outputs.context[rows], logits=outputs.logits[rows]
            )
        return losses, outputs

    @staticmethod
    def original_rows(targets: List[Instances], jitter_copies: int) -> torch.Tensor:
        """Rows of the ground-truth words among `recognition_inputs(targets, jitter_copies)`' rows."""
        rows, offset = [], 0
        for t in targets:
            n = int((t.gt_texts != CharsetEncoder.PAD).any(dim=1).sum())
            rows.append(torch.arange(offset, offset + n))
            offset += n * (jitter_copies + 1)
        return torch.cat(rows) if rows else torch.zeros((0,), dtype=torch.long)

    def forward_with_given_boxes(
        self,
        features: Dict[str, torch.Tensor],
        instances: List[Instances],
        input_scales: Optional[Sequence[float]] = None,
    ):
        instances = super().forward_with_given_boxes(features, instances)
        return self._forward_text_inference(features, instances, input_scales)

    def recognition_inputs(
        self, targets: List[Instances], jitter_copies: int = 0
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor], torch.Tensor]:
        """
        Boxes, box-relative masks and token targets of the ground-truth words that can be encoded, plus
        `jitter_copies` copies of each word with its box corners moved by up to `jitter_ratio` of the box size.
        """
        boxes, masks, texts = [], [], []
        for t in targets:
            keep = (t.gt_texts != CharsetEncoder.PAD).any(dim=1)
            idx = torch.nonzero(keep).flatten()
            gt_boxes = t.gt_boxes.tensor[idx]
            if jitter_copies > 0 and len(idx):
                idx = idx.repeat(jitter_copies + 1)
                gt_boxes = self._jitter(gt_boxes, jitter_copies, t.image_size)
            boxes.append(gt_boxes)
            if len(idx):
                masks.append(t.gt_masks[idx].crop_and_resize(gt_boxes, _GT_MASK_SIZE).to(torch.float32))
            else:
                masks.append(gt_boxes.new_zeros((0, _GT_MASK_SIZE, _GT_MASK_SIZE)))
            texts.append(t.gt_texts[idx])
        return boxes, masks, torch.cat(texts) if texts else torch.zeros((0, 1), dtype=torch.long)

    def _jitter(self, boxes: torch.Tensor, copies: int, image_size) -> torch.Tensor:
        size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
        noise = (torch.rand((copies,) + boxes.shape, device=boxes.device) * 2 - 1) * self.jitter_ratio * size
        jittered = (boxes[None] + noise).reshape(-1, 4)
        height, width = image_size
        jittered[:, 0::2] = jittered[:, 0::2].clamp(0, width)
        jittered[:, 1::2] = jittered[:, 1::2].clamp(0, height)
        return torch.cat([boxes, jittered])

    def forward_text_train(
        self,
        features: Dict[str, torch.Tensor],
        targets: List[Instances],
        jitter_copies: int = 0,
        input_scales: Optional[Sequence[float]] = None,
    ) -> Tuple[RecognitionOutputs, torch.Tensor]:
        """Teacher-forced recognition on the encodable ground-truth words; returns outputs and targets."""
        boxes, masks, text_targets = self.recognition_inputs(targets, jitter_copies)
        # The decoder runs only as many steps as the longest word needs: padding columns cost time, not loss.
        steps = int((text_targets != CharsetEncoder.PAD).sum(dim=1).max()) if len(text_targets) else 1
        text_targets = text_targets[:, : max(steps, 1)]
        feature = features[self.text_in_feature]
        outputs = self.text_head.forward_train(
            feature, boxes, masks, text_targets.to(feature.device), input_scales
        )
        return outputs, text_targets.to(feature.device)

    def _forward_text_inference(
        self,
        features: Dict[str, torch.Tensor],
        instances: List[Instances],
        input_scales: Optional[Sequence[float]] = None,
    ):
        feature = features[self.text_in_feature]
        boxes = [x.pred_boxes.tensor for x in instances]
        masks = [x.pred_masks[:, 0] if x.has("pred_masks") else self._full_box_masks(x) for x in instances]
        outputs = self.text_head.encode(feature, boxes, masks, input_scales)
        ids, log_probs = self.text_head.recognize(outputs.context, self.beam_width)
        scores = self.text_head.text_scores(ids, log_probs, outputs.context.shape[1])
        start = 0
        for x in instances:
            end = start + len(x)
            x.pred_text_ids = ids[start:end]
            x.text_scores = scores[start:end]
            start = end
        return instances

    @staticmethod
    def _full_box_masks(instances: Instances) -> torch.Tensor:
        return instances.pred_boxes.tensor.new_ones((len(instances), _GT_MASK_SIZE, _GT_MASK_SIZE))
