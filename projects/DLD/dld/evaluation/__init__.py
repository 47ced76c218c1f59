"""Evaluation of end-to-end text spotting: the ICDAR protocol (pure functions), lexicons, submission zips and
the Detectron2 evaluator."""
from .cost_metrics import COST_OUTPUT_KEYS, cost_metrics, cost_table
from .lexicon import LEXICON_KINDS, Lexicon, load_lexicons, nearest_words, should_correct
from .protocols import (
    METRIC_KEYS,
    SPECIAL_CHARACTERS,
    ImageCounts,
    MatchResult,
    TextGT,
    TextPrediction,
    evaluate_image,
    evaluate_protocol,
    match_greedy,
    metrics_table,
    polygon_iou,
    summarize,
    transcription_match,
    word_spotting_transcription,
)
from .submission import (
    evaluate_submission,
    polygon_to_quad,
    read_gt_zip,
    read_submission_zip,
    to_submission_words,
    write_submission_zip,
)
from .text_evaluator import TextSpottingEvaluator, load_text_ground_truth
from .word_accuracy import ground_truth_mapper, read_ground_truth_words, word_accuracy

__all__ = [
    "ground_truth_mapper",
    "read_ground_truth_words",
    "word_accuracy",
    "TextSpottingEvaluator",
    "load_text_ground_truth",
    "COST_OUTPUT_KEYS",
    "cost_metrics",
    "cost_table",
    "METRIC_KEYS",
    "SPECIAL_CHARACTERS",
    "ImageCounts",
    "MatchResult",
    "TextGT",
    "TextPrediction",
    "evaluate_image",
    "evaluate_protocol",
    "match_greedy",
    "metrics_table",
    "polygon_iou",
    "summarize",
    "transcription_match",
    "word_spotting_transcription",
    "LEXICON_KINDS",
    "Lexicon",
    "load_lexicons",
    "nearest_words",
    "should_correct",
    "evaluate_submission",
    "polygon_to_quad",
    "read_gt_zip",
    "read_submission_zip",
    "to_submission_words",
    "write_submission_zip",
]
