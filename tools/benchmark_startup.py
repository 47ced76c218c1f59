#!/usr/bin/env python
"""
Start-up time of tools/evaluate_submission.py: the wall time of the whole command scoring a small crafted
submission (three images), the median of --runs runs, beside the time of `import dld` (Detectron2 and torch)
for scale. Prints the numbers; nothing is asserted.

    python tools/benchmark_startup.py --runs 5
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from typing import List, Optional

TOOLS = os.path.dirname(os.path.abspath(__file__))


def _quad(x0: int, y0: int, x1: int, y1: int) -> str:
    return f"{x0},{y0},{x1},{y0},{x1},{y1},{x0},{y1}"


def write_zips(folder: str) -> List[str]:
    """A ground-truth zip and a submission zip of three images."""
    paths = []
    for prefix in ("gt", "res"):
        path = os.path.join(folder, f"{prefix}.zip")
        with zipfile.ZipFile(path, "w") as zf:
            for i, word in enumerate(("HELLO", "WORLD", "SHOP"), start=1):
                zf.writestr(f"{prefix}_img_{i}.txt", f"{_quad(0, 0, 100, 20)},{word}\n{_quad(0, 40, 90, 60)},###\n")
        paths.append(path)
    return paths


def seconds(command: List[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        gt, pred = write_zips(tmp)
        score = [sys.executable, os.path.join(TOOLS, "evaluate_submission.py"), "--gt", gt, "--pred", pred]
        seconds(score)  # warm the file cache
        cli = [seconds(score) for _ in range(args.runs)]
    heavy = [seconds([sys.executable, "-c", "import dld"]) for _ in range(max(1, args.runs // 2))]
    print(f"evaluate_submission.py, whole command on 3 images: median {statistics.median(cli):.2f} s "
          f"(min {min(cli):.2f}, max {max(cli):.2f}, {args.runs} runs)")
    print(f"for scale, python -c 'import dld' (Detectron2, torch): median {statistics.median(heavy):.2f} s")


if __name__ == "__main__":
    main()
