#!/usr/bin/env python
"""
Score any text spotter's ICDAR-style submission zip against a ground-truth zip with the project's protocol
(the same code as the in-training evaluator): detection, end-to-end and word spotting (with the detection row
of that mode), without and with lexicons. Prints a table and writes every metric as JSON.

    python tools/evaluate_submission.py --gt ../shared/data/eval/gts/gt-icdar2015.zip --pred submission.zip \\
        --lexicon strong=../shared/data/eval/lexicons/icdar2015/strong_lexicon.zip \\
        --lexicon weak=../shared/data/eval/lexicons/icdar2015/ch4_test_vocabulary.txt \\
        --lexicon generic=../shared/data/eval/lexicons/icdar2015/GenericVocabulary.txt --output metrics.json
    python tools/evaluate_submission.py --gt total-text-gt.zip --pred submission.zip --format polygon \\
        --lexicon full=full_lexicons.txt --iou 0.5

Thresholds against the official RRC script: --iou is its IOU_CONSTRAINT (a pair matches when IoU > it) and
--area-precision its AREA_PRECISION_CONSTRAINT (a prediction more than this fraction inside a don't-care word
is left out); both default to 0.5, as there. The official script's single -iou sets both at once: to
reproduce e.g. its `-iou 0.1`, pass `--iou 0.1 --single-threshold` (the same as `--iou 0.1 --area-precision 0.1`).

Files that are not UTF-8 are read as the official script reads them (invalid bytes become U+FFFD), with a
warning that counts the replaced bytes; an empty submission is scored (all zeros) with a warning. A user error
(a missing file, not a zip, a malformed line, a prediction for an image without ground truth) is one line
naming the file, the zip member and the line, and exit status 2. The scoring imports neither torch nor
Detectron2 (start-up: tools/benchmark_startup.py).
"""
import argparse
import importlib.util
import json
import logging
import os
import sys
import types
from typing import Dict, List, Optional

logger = logging.getLogger("dld.evaluate_submission")

# What a user's input can raise: a one-line message, exit status 2 (anything else is a bug: a traceback).
USER_ERRORS = (OSError, ValueError)


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
    parser.add_argument(
        "--iou", type=float, default=0.5,
        help="a pair matches when IoU > this (the official script's IOU_CONSTRAINT), default 0.5",
    )
    thresholds = parser.add_mutually_exclusive_group()
    thresholds.add_argument(
        "--area-precision", type=float, default=0.5,
        help="a prediction more than this fraction inside a don't-care word is left out (the official "
        "AREA_PRECISION_CONSTRAINT), default 0.5",
    )
    thresholds.add_argument(
        "--single-threshold", action="store_true",
        help="as the official script's -iou: --iou is the don't-care area threshold too",
    )
    parser.add_argument(
        "--format", choices=["quad", "polygon"], default=None,
        help="line format of both zips; default: quad for gt_img_<N>.txt members, else polygon",
    )
    parser.add_argument("--no-word-spotting", action="store_true", help="skip the word-spotting metrics")
    parser.add_argument("--workers", type=int, default=1, help="threads for the lexicon search (-1: all cores)")
    parser.add_argument("--output", default=None, help="write the metrics to this JSON file")
    return parser


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Score the submission and print the table; user errors raise (see :func:`cli` for the one-line form)."""
    from dld.evaluation.protocols import metrics_table
    from dld.evaluation.submission import evaluate_submission

    args = build_parser().parse_args(argv)
    area_precision = args.iou if args.single_threshold else args.area_precision
    metrics = evaluate_submission(
        args.gt,
        args.pred,
        lexicons=dict(args.lexicon),
        iou_threshold=args.iou,
        area_precision_threshold=area_precision,
        polygon_format=args.format,
        word_spotting=not args.no_word_spotting,
        lexicon_workers=args.workers,
    )
    print(
        f"{metrics['num_images']} images, {metrics['num_gt']} cared words, {metrics['num_pred']} cared predictions, "
        f"IoU > {args.iou}, don't-care area > {area_precision}, word accuracy {100.0 * metrics['word_accuracy']:.2f}%"
    )
    print(metrics_table(metrics))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(metrics, f, indent=2)
        print(f"Metrics written to {args.output}")
    return metrics


def cli(argv: List[str]) -> int:
    """:func:`main` with every user error as one line on stderr and exit status 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        main(argv)
    except USER_ERRORS as e:
        print(f"{os.path.basename(sys.argv[0] or 'evaluate_submission.py')}: error: {e}", file=sys.stderr)
        return 2
    return 0


def _without_package_init() -> None:
    """
    Let ``import dld.evaluation.submission`` load the protocol modules alone: `dld/__init__.py` and
    `dld/evaluation/__init__.py` import Detectron2 and torch (4-6 s), which scoring a zip does not need. Bare
    entries for the two packages, holding only their folders, stand in for them. Only for this script run as
    the main program, where nothing else imports `dld`.
    """
    spec = importlib.util.find_spec("dld")
    if "dld" in sys.modules or spec is None or not spec.submodule_search_locations:
        return
    roots = list(spec.submodule_search_locations)
    for name, path in (("dld", roots), ("dld.evaluation", [os.path.join(r, "evaluation") for r in roots])):
        package = types.ModuleType(name)
        package.__path__ = path
        sys.modules[name] = package


if __name__ == "__main__":
    _without_package_init()
    sys.exit(cli(sys.argv[1:]))
