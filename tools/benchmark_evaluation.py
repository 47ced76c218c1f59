#!/usr/bin/env python
"""
Time the evaluation protocol on real data: the whole ICDAR 2015 test ground truth scored against itself as a
submission, with the strong, weak and generic (about 88k words) lexicons, all in one run. Prints the time taken
and the metrics. The target is at most 20 s on 2 CPU cores.

    python tools/benchmark_evaluation.py
    python tools/benchmark_evaluation.py --dataset totaltext --data-root ../shared/data/eval --workers 2
"""
import argparse
import logging
import os
import sys
import time
from typing import List, Optional

from dld.evaluation import evaluate_submission, metrics_table

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_ROOT = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "eval")

# dataset -> (ground-truth zip, {lexicon kind: path}), relative to the data root.
BENCHMARKS = {
    "icdar2015": (
        "gts/gt-icdar2015.zip",
        {
            "strong": "lexicons/icdar2015/strong_lexicon.zip",
            "weak": "lexicons/icdar2015/ch4_test_vocabulary.txt",
            "generic": "lexicons/icdar2015/GenericVocabulary.txt",
        },
    ),
    "icdar2013": (
        "gts/gt-icdar2013.zip",
        {
            "strong": "lexicons/icdar2013/strong_lexicon.zip",
            "weak": "lexicons/icdar2013/ch2_test_vocabulary.txt",
            "generic": "lexicons/icdar2013/GenericVocabulary.txt",
        },
    ),
    "totaltext": ("gts/total-text-gt.zip", {"full": "lexicons/total-text/full_lexicons.txt"}),
}


def main(argv: Optional[List[str]] = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(BENCHMARKS), default="icdar2015")
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="folder holding gts/ and lexicons/")
    parser.add_argument("--workers", type=int, default=1, help="threads for the lexicon search (-1: all cores)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    gt_rel, lexicons = BENCHMARKS[args.dataset]
    gt_zip = os.path.join(args.data_root, gt_rel)
    if not os.path.isfile(gt_zip):
        sys.exit(f"Ground truth {gt_zip} not found (set --data-root)")
    lexicons = {kind: os.path.join(args.data_root, rel) for kind, rel in lexicons.items()}

    start = time.perf_counter()
    metrics = evaluate_submission(gt_zip, gt_zip, lexicons=lexicons, lexicon_workers=args.workers)
    elapsed = time.perf_counter() - start

    print(f"{args.dataset}: ground truth scored against itself, lexicons {', '.join(lexicons)}")
    print(f"{metrics['num_images']} images, {metrics['num_gt']} cared words")
    print(metrics_table(metrics))
    print(f"Time taken: {elapsed:.2f} s (reading the zips and lexicons, matching, lexicon search, scoring)")
    return elapsed


if __name__ == "__main__":
    main(sys.argv[1:])
