"""Resume after a kill: a DLD run killed with SIGKILL continues from its last checkpoint with all its state."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from conftest import REPO_ROOT
from reliability_support import CONFIG, TINY, TINY_DLD, generate_tiny_synth, tiny_cfg, tool_env, write_teacher

from dld.engine import AtomicCheckpointer


def _last_checkpoint(out):
    pointer = out / "last_checkpoint"
    return out / pointer.read_text().strip() if pointer.is_file() else None


def _wait_for_checkpoint(proc, out, min_iteration: int, log, timeout: float = 90.0):
    """Poll until the run has tagged a checkpoint of iteration >= min_iteration; return its path."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        last = _last_checkpoint(out)
        if last is not None and last.name.startswith("model_0") and int(last.stem[len("model_"):]) >= min_iteration:
            return last
        if proc.poll() is not None:
            pytest.fail(f"training exited early ({proc.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"no checkpoint of iteration {min_iteration} within {timeout} s:\n{log.read_text()[-3000:]}")


def _adam_steps(checkpoint) -> int:
    states = checkpoint["trainer"]["_trainer"]["optimizer"]["state"].values()
    return max(int(s["step"]) for s in states)


def _train_then_kill(args, env, out, min_iteration: int, log):
    """Start training, SIGKILL it once it has tagged a checkpoint of iteration >= min_iteration."""
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, *args], cwd=REPO_ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        try:
            _wait_for_checkpoint(proc, out, min_iteration, log)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _warmup_lr(checkpoint) -> float:
    return checkpoint["trainer"]["_trainer"]["optimizer"]["param_groups"][0]["lr"]


def _scheduled_lrs(opts, steps: int):
    """The learning rate after 0..steps scheduler steps of an uninterrupted run with these options."""
    from detectron2.solver import build_lr_scheduler

    cfg = tiny_cfg([o for pair in zip(opts[::2], opts[1::2]) if pair[0] != "OUTPUT_DIR" for o in pair])
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.SOLVER.BASE_LR)
    scheduler = build_lr_scheduler(cfg, optimizer)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


@pytest.mark.slow
def test_sigkill_then_resume_continues_with_iteration_optimizer_scheduler_and_selector(tmp_path):
    datasets = generate_tiny_synth(tmp_path / "datasets")
    teacher = write_teacher(tmp_path / "teacher.pth")
    env = tool_env(datasets)
    out = tmp_path / "run"
    # A long schedule (still warming up when killed): the same command is run again with --resume.
    opts = ["OUTPUT_DIR", str(out), *TINY, *TINY_DLD, "MODEL.DLD.TEACHER.WEIGHTS", str(teacher),
            "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.MAX_ITER", "1000", "SOLVER.WARMUP_ITERS", "200"]
    train = ["tools/train_net.py", "--config-file", CONFIG]

    _train_then_kill([*train, *opts], env, out, 3, tmp_path / "first.log")
    last = _last_checkpoint(out)  # read after the kill: whatever the run had tagged when it died
    before = torch.load(last, map_location="cpu", weights_only=False)
    k = before["trainer"]["iteration"]
    assert last.name == f"model_{k:07d}.pth" and k >= 3
    assert any(key.startswith("selector.") for key in before["model"])

    # The same command with --resume, killed again two iterations later (its next checkpoint).
    log = tmp_path / "resumed.log"
    _train_then_kill([*train, "--resume", *opts], env, out, k + 2, log)
    assert f"Starting training from iteration {k + 1}" in log.read_text()
    after = torch.load(out / f"model_{k + 2:07d}.pth", map_location="cpu", weights_only=False)
    assert after["trainer"]["iteration"] == k + 2

    # Optimizer: AdamW's step count goes on (a fresh optimizer would restart at 1).
    assert _adam_steps(before) == k + 1 and _adam_steps(after) == k + 3
    # Scheduler: the same linear warm-up, two steps further (a fresh scheduler would restart near 0.001x).
    assert before["trainer"]["hooks"]["LRScheduler"]["last_epoch"] == k + 1
    assert after["trainer"]["hooks"]["LRScheduler"]["last_epoch"] == k + 3

    expected = _scheduled_lrs(opts, k + 3)
    assert _warmup_lr(before) == pytest.approx(expected[k + 1], rel=1e-9)
    assert _warmup_lr(after) == pytest.approx(expected[k + 3], rel=1e-9) and expected[k + 3] > expected[k + 1]

    # Weights (student and selector): two AdamW steps away from the killed run's, far from a fresh start.
    lr = _warmup_lr(after)
    for name, value in before["model"].items():
        if value.dtype.is_floating_point and "running_" not in name:
            step = (after["model"][name].float() - value.float()).abs().max().item()
            assert step <= 20 * lr, (name, step, lr)
    tracked = "selector.bn1.num_batches_tracked"
    assert after["model"][tracked] > before["model"][tracked] >= k + 1  # the selector's BatchNorm kept counting


def test_a_save_that_dies_midway_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    model = nn.Linear(3, 2)
    checkpointer = AtomicCheckpointer(model, str(tmp_path))
    checkpointer.save("model_final", iteration=1)
    good = (tmp_path / "model_final.pth").read_bytes()
    real_save = torch.save

    def dies_midway(obj, f, *args, **kwargs):
        f.write(b"the first bytes of a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", dies_midway)
    with torch.no_grad():
        model.weight.fill_(7.0)
    with pytest.raises(OSError, match="No space"):
        checkpointer.save("model_final", iteration=2)
    assert (tmp_path / "model_final.pth").read_bytes() == good
    assert checkpointer.get_checkpoint_file() == str(tmp_path / "model_final.pth")
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.load(tmp_path / "model_final.pth", weights_only=False)["iteration"] == 1

    # The same failure with Detectron2's own checkpointer truncates the file it overwrites.
    from detectron2.checkpoint import DetectionCheckpointer

    plain = DetectionCheckpointer(model, str(tmp_path / "plain"))
    os.makedirs(tmp_path / "plain")
    plain.save("model_final", iteration=1)
    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(OSError):
        plain.save("model_final", iteration=2)
    assert (tmp_path / "plain/model_final.pth").read_bytes() == b"the first bytes of a checkpoint"
