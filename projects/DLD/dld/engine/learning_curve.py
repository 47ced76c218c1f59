"""LearningCurveHook: cheap periodic evaluations during training, against training wall time."""
import json
import logging
import os
import time
from typing import Any, Callable, Dict, List

from detectron2.engine import HookBase
from detectron2.utils import comm

__all__ = ["LearningCurveHook", "CURVE_FILE", "read_curve"]

logger = logging.getLogger(__name__)

# The file, in OUTPUT_DIR, that the hook appends one JSON object per evaluation to.
CURVE_FILE = "learning_curve.jsonl"


def read_curve(output_dir: str) -> List[Dict[str, Any]]:
    """The rows of a run's learning curve, in order ([] when the run has none)."""
    path = os.path.join(output_dir, CURVE_FILE)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class LearningCurveHook(HookBase):
    """
    Every `period` iterations and after the last one, calls `evaluate()` (a dict of metrics) and appends
    `{"iteration", "train_wall_s", **metrics}` to OUTPUT_DIR/learning_curve.jsonl. `train_wall_s` is the
    wall time of training so far (data loading, steps, checkpoints), without the time of these evaluations.
    A resumed run continues the curve from its last row at or before the iteration it resumes from; the time
    between that row and the interruption is not counted.
    """

    def __init__(self, period: int, evaluate: Callable[[], Dict[str, Any]], output_dir: str):
        self._period = period
        self._evaluate = evaluate
        self._path = os.path.join(output_dir, CURVE_FILE)

    def before_train(self):
        self._start = time.perf_counter()
        self._excluded = 0.0
        rows = [r for r in read_curve(os.path.dirname(self._path)) if r["iteration"] <= self.trainer.start_iter]
        self._offset = rows[-1]["train_wall_s"] if rows else 0.0
        if comm.is_main_process():
            # Rows past the resume point are redone.
            with open(self._path, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if next_iter == self.trainer.max_iter or (self._period > 0 and next_iter % self._period == 0):
            self._record(next_iter)

    def _record(self, iteration: int) -> None:
        now = time.perf_counter()
        wall = self._offset + now - self._start - self._excluded
        metrics = self._evaluate()
        self._excluded += time.perf_counter() - now
        if not comm.is_main_process():
            return
        row = {"iteration": iteration, "train_wall_s": round(wall, 1), "eval_s": round(time.perf_counter() - now, 1)}
        row.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()})
        with open(self._path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                self.trainer.storage.put_scalar(f"curve/{key}", value, smoothing_hint=False)
        logger.info("Learning curve: %s", json.dumps(row))
