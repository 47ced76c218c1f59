from .backbone import build_basic_resnet_fpn_backbone
from .ctc import CTCDecoder
from .cost import FlopsTable, count_flops, count_selector_flops, flops_breakdown
from .distill_losses import (
    feature_l2_loss,
    selector_accuracy_loss,
    selector_cost_loss,
    sequence_kd_loss,
    sequence_log_probs,
)
from .distill import DLDTextSpotter
from .lowres import lowres_size, padded_size, resize_batch, resize_images, resize_instances
from .meta_arch import TextSpotterRCNN
from .recognition_warmup import TextRecognitionWarmup
from .pixel_reader import ImageCropExtractor, ImageWordFeatures, PixelCNN, WithInputImage
from .recognizer import AttentionDecoder, LightCRNN, MaskedRoIExtractor, SequenceEncoder
from .selector import SELECTOR_REGISTRY, ResolutionSelector, SelectorOutput, build_selector
from .text_head import TextRecognitionHead, TextROIHeads

__all__ = [
    "DLDTextSpotter",
    "TextSpotterRCNN",
    "TextRecognitionWarmup",
    "TextROIHeads",
    "TextRecognitionHead",
    "MaskedRoIExtractor",
    "LightCRNN",
    "SequenceEncoder",
    "AttentionDecoder",
    "CTCDecoder",
    "ImageCropExtractor",
    "ImageWordFeatures",
    "PixelCNN",
    "WithInputImage",
    "build_basic_resnet_fpn_backbone",
    "feature_l2_loss",
    "sequence_log_probs",
    "sequence_kd_loss",
    "selector_accuracy_loss",
    "selector_cost_loss",
    "SELECTOR_REGISTRY",
    "ResolutionSelector",
    "SelectorOutput",
    "build_selector",
    "FlopsTable",
    "count_flops",
    "count_selector_flops",
    "flops_breakdown",
    "lowres_size",
    "padded_size",
    "resize_batch",
    "resize_images",
    "resize_instances",
]
