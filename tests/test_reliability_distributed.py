"""Distributed training on CPU: `tools/train_net.py --num-gpus 2` runs two Gloo processes through `launch`."""
import pytest
import torch

from reliability_support import CONFIG, TINY, generate_tiny_synth, run_tool, tool_env


@pytest.mark.slow
def test_two_processes_on_cpu_train_and_save_one_checkpoint(tmp_path):
    # Hide any GPU: with one, Detectron2's launch would pick NCCL, and this covers the CPU (Gloo) path.
    env = dict(tool_env(generate_tiny_synth(tmp_path / "datasets")), CUDA_VISIBLE_DEVICES="")
    out = tmp_path / "ddp"
    proc = run_tool(["tools/train_net.py", "--num-gpus", "2", "--config-file", CONFIG, "OUTPUT_DIR", str(out),
                     *TINY, "SOLVER.MAX_ITER", "3", "SOLVER.CHECKPOINT_PERIOD", "100"], env, timeout=240)
    log = proc.stdout + proc.stderr
    assert "World size: 2" in log
    # Both ranks ran the training loop (rank 1 logs to its own file) ...
    assert "Starting training from iteration 0" in (out / "log.txt").read_text()
    assert "Starting training from iteration 0" in (out / "log.txt.rank1").read_text()
    # ... and only the main process wrote a checkpoint, of the last iteration, with the unwrapped model's keys.
    assert sorted(p.name for p in out.glob("*.pth")) == ["model_final.pth"]
    checkpoint = torch.load(out / "model_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["trainer"]["iteration"] == 2
    assert not any(key.startswith("module.") for key in checkpoint["model"])
