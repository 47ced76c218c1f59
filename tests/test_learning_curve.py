"""LearningCurveHook (training wall time without its evaluations, resume) and tools/learning_curve.py."""
import importlib.util
import json
import time
from types import SimpleNamespace

import pytest

from conftest import REPO_ROOT
from dld.engine import LearningCurveHook, read_curve


def _tool():
    spec = importlib.util.spec_from_file_location("learning_curve", REPO_ROOT / "tools" / "learning_curve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Storage:
    def __init__(self):
        self.scalars = {}

    def put_scalar(self, name, value, smoothing_hint=True):
        self.scalars[name] = value


def _run(hook, start_iter, max_iter, step_s=0.0):
    hook.trainer = SimpleNamespace(start_iter=start_iter, max_iter=max_iter, iter=start_iter, storage=_Storage())
    hook.before_train()
    for it in range(start_iter, max_iter):
        hook.trainer.iter = it
        time.sleep(step_s)
        hook.after_step()
    return hook.trainer.storage


def test_rows_every_period_and_at_the_end_without_evaluation_time(tmp_path):
    def slow_evaluation():
        time.sleep(0.2)
        return {"word_accuracy": 50.0, "det_hmean": 80.123456}

    storage = _run(LearningCurveHook(4, slow_evaluation, str(tmp_path)), 0, 10, step_s=0.01)
    rows = read_curve(str(tmp_path))
    assert [r["iteration"] for r in rows] == [4, 8, 10]
    # Ten steps of 10 ms: the three evaluations of 200 ms each are not training time.
    assert rows[-1]["train_wall_s"] < 0.35
    assert all(r["eval_s"] >= 0.2 for r in rows)
    assert rows[0]["det_hmean"] == 80.1235
    assert storage.scalars["curve/word_accuracy"] == 50.0


def test_resume_keeps_earlier_rows_and_continues_their_wall_time(tmp_path):
    lines = [{"iteration": 4, "train_wall_s": 100.0}, {"iteration": 8, "train_wall_s": 200.0}]
    (tmp_path / "learning_curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    # Resumed from the checkpoint of iteration 4: the row of iteration 8 is redone.
    _run(LearningCurveHook(4, lambda: {"word_accuracy": 1.0}, str(tmp_path)), 4, 8)
    rows = read_curve(str(tmp_path))
    assert [r["iteration"] for r in rows] == [4, 8]
    assert rows[1]["train_wall_s"] == pytest.approx(100.0, abs=0.5)


def test_tool_chains_stages_into_one_table_and_a_png(tmp_path, capsys):
    warmup, joint = tmp_path / "warmup", tmp_path / "joint"
    for folder, rows in (
        (warmup, [{"iteration": 200, "train_wall_s": 60.0, "word_accuracy": 40.0},
                  {"iteration": 400, "train_wall_s": 120.0, "word_accuracy": 80.0}]),
        (joint, [{"iteration": 100, "train_wall_s": 90.0, "word_accuracy": 85.0, "det_hmean": 50.0, "e2e_hmean": 40.0}]),
    ):
        folder.mkdir()
        (folder / "learning_curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows = _tool().main([str(warmup), str(joint)])
    assert [round(r["wall_min"], 2) for r in rows] == [1.0, 2.0, 3.5]
    out = capsys.readouterr().out
    assert "| joint | 100 | 3.5 | 50.00 | 40.00 | 85.00 |" in out
    assert "| warmup | 200 | 1.0 | - | - | 40.00 |" in out
    assert (joint / "learning_curve.png").stat().st_size > 1000
    assert (joint / "learning_curve.md").read_text().count("\n") == 5


def test_tool_names_a_folder_without_a_curve(tmp_path):
    with pytest.raises(FileNotFoundError, match="TEST.CURVE.PERIOD"):
        _tool().main([str(tmp_path)])
