from .meta_arch import TextSpotterRCNN
from .recognizer import AttentionDecoder, LightCRNN, MaskedRoIExtractor, SequenceEncoder
from .text_head import TextRecognitionHead, TextROIHeads, build_charset_encoder

__all__ = [
    "TextSpotterRCNN",
    "TextROIHeads",
    "TextRecognitionHead",
    "MaskedRoIExtractor",
    "LightCRNN",
    "SequenceEncoder",
    "AttentionDecoder",
    "build_charset_encoder",
]
