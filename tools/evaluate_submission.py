#!/usr/bin/env python
"""
Score any text spotter's ICDAR-style submission zip against a ground-truth zip with the project's protocol
(the same code as the in-training evaluator): detection, end-to-end and word spotting, without and with
lexicons. Prints a table and writes every metric as JSON.

    python tools/evaluate_submission.py --gt ../shared/data/eval/gts/gt-icdar2015.zip --pred submission.zip \\
        --lexicon strong=../shared/data/eval/lexicons/icdar2015/strong_lexicon.zip \\
        --lexicon weak=../shared/data/eval/lexicons/icdar2015/ch4_test_vocabulary.txt \\
        --lexicon generic=../shared/data/eval/lexicons/icdar2015/GenericVocabulary.txt --output metrics.json
    python tools/evaluate_submission.py --gt total-text-gt.zip --pred submission.zip --format polygon \\
        --lexicon full=full_lexicons.txt --iou 0.5
"""
import argparse
import json
import logging
import sys
from typing import Dict, List, Optional

from dld.evaluation import evaluate_submission, metrics_table

logger = logging.getLogger("dld.evaluate_submission")


def _lexicon_arg(value: str) -> List[str]:
    kind, sep, path = value.partition("=")
    if not sep or not kind or not path:
        raise argparse.ArgumentTypeError(f"expected KIND=PATH, got {value!r}")
    return [kind, path]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", required=True, help="ground-truth zip (gt_img_<N>.txt or poly_gt_img<N>.txt)")
    parser.add_argument("--pred", required=True, help="submission zip (res_img_<N>.txt)")
    parser.add_argument(
        "--lexicon", action="append", type=_lexicon_arg, default=[], metavar="KIND=PATH",
        help="strong=DIR_OR_ZIP (voc_img_<N>.txt), weak=TXT, generic=TXT, full=TXT; repeat for several",
    )
    parser.add_argument("--iou", type=float, default=0.5, help="IoU threshold (strict), default 0.5")
    parser.add_argument("--area-precision", type=float, default=0.5, help="don't-care area threshold, default 0.5")
    parser.add_argument(
        "--format", choices=["quad", "polygon"], default=None,
        help="line format of both zips; default: quad for gt_img_<N>.txt members, else polygon",
    )
    parser.add_argument("--no-word-spotting", action="store_true", help="skip the word-spotting metrics")
    parser.add_argument("--workers", type=int, default=1, help="threads for the lexicon search (-1: all cores)")
    parser.add_argument("--output", default=None, help="write the metrics to this JSON file")
    return parser


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    metrics = evaluate_submission(
        args.gt,
        args.pred,
        lexicons=dict(args.lexicon),
        iou_threshold=args.iou,
        area_precision_threshold=args.area_precision,
        polygon_format=args.format,
        word_spotting=not args.no_word_spotting,
        lexicon_workers=args.workers,
    )
    print(
        f"{metrics['num_images']} images, {metrics['num_gt']} cared words, {metrics['num_pred']} cared predictions, "
        f"IoU > {args.iou}, word accuracy {100.0 * metrics['word_accuracy']:.2f}%"
    )
    print(metrics_table(metrics))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(metrics, f, indent=2)
        print(f"Metrics written to {args.output}")
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
