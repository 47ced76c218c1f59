"""Evaluation of end-to-end text spotting: the protocol (pure functions) and the Detectron2 evaluator."""
from .protocols import (
    METRIC_KEYS,
    ImageCounts,
    MatchResult,
    TextGT,
    TextPrediction,
    evaluate_image,
    match_greedy,
    polygon_iou,
    summarize,
    transcription_match,
)
from .text_evaluator import TextSpottingEvaluator, load_text_ground_truth

__all__ = [
    "TextSpottingEvaluator",
    "load_text_ground_truth",
    "METRIC_KEYS",
    "ImageCounts",
    "MatchResult",
    "TextGT",
    "TextPrediction",
    "evaluate_image",
    "match_greedy",
    "polygon_iou",
    "summarize",
    "transcription_match",
]
