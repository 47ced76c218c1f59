"""End to end through the command-line tools: generate a tiny synthetic split, train, evaluate, draw."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO_ROOT

CONFIG = str(REPO_ROOT / "configs/synth/text_spotter_R_18_FPN_synth.yaml")
WARMUP_CONFIG = str(REPO_ROOT / "configs/synth/recognition_warmup_R_18_FPN_synth.yaml")
TINY = [
    "MODEL.WEIGHTS", "", "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.TEXT_HEAD.CHANNELS", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
    "MODEL.ROI_MASK_HEAD.CONV_DIM", "16", "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "TEST.TEXT.SCORE_THRESHOLD", "0.0",
]


def _run(args, env):
    proc = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_generate_train_evaluate_resume_and_demo(tmp_path):
    env = dict(os.environ, DETECTRON2_DATASETS=str(tmp_path / "datasets"), OMP_NUM_THREADS="2")
    out = tmp_path / "run"
    _run(["tools/generate_synthetic_data.py", "--config-file", CONFIG, "--num-train", "6", "--num-val", "3",
          "--no-progress"], env)
    train = ["tools/train_net.py", "--config-file", CONFIG, "OUTPUT_DIR", str(out), "SOLVER.MAX_ITER", "3",
             "SOLVER.CHECKPOINT_PERIOD", "2", "TEST.EVAL_PERIOD", "0", *TINY]
    _run(train, env)
    assert (out / "model_final.pth").is_file() and (out / "model_0000001.pth").is_file()

    # --resume continues from the last checkpoint: with MAX_ITER raised to 5 it runs only iterations 3 and 4
    resume = ["tools/train_net.py", "--config-file", CONFIG, "--resume", "OUTPUT_DIR", str(out),
              "SOLVER.MAX_ITER", "5", "SOLVER.CHECKPOINT_PERIOD", "2", "TEST.EVAL_PERIOD", "0", *TINY]
    _run(resume, env)
    log = (out / "log.txt").read_text()
    assert f"Loading trainer from {out / 'model_final.pth'}" in log
    assert "Starting training from iteration 3" in log

    log = _run(["tools/train_net.py", "--config-file", CONFIG, "--eval-only", "OUTPUT_DIR", str(out),
                "MODEL.WEIGHTS", str(out / "model_final.pth"), *TINY], env)
    metrics = json.loads((out / "inference/synth_text_val/text_metrics.json").read_text())
    assert metrics["num_images"] == 3 and metrics["num_gt"] > 0
    assert 0.0 <= metrics["e2e_hmean"] <= metrics["det_hmean"] + 1e-9 <= 1.0 + 1e-9
    assert "det_hmean" in log and "e2e_hmean" in log

    images = tmp_path / "datasets/synth_text/val/images"
    demo_out = tmp_path / "demo"
    _run(["tools/demo.py", "--config-file", CONFIG, "--input", str(images), "--output", str(demo_out),
          "--confidence-threshold", "0.0", "--opts", "MODEL.WEIGHTS", str(out / "model_final.pth"), *TINY], env)
    drawn = cv2.imread(str(demo_out / "img_1.jpg.png"))
    source = cv2.imread(str(images / "img_1.jpg"))
    assert drawn is not None and drawn.shape == source.shape
    assert np.abs(drawn.astype(int) - source.astype(int)).mean() > 1.0  # polygons and words were drawn
    records = [json.loads(line) for line in (demo_out / "words.jsonl").read_text().splitlines()]
    assert [os.path.basename(r["file"]) for r in records] == ["img_1.jpg", "img_2.jpg", "img_3.jpg"]


@pytest.mark.slow
def test_recognition_warmup_then_joint_training_from_its_checkpoint(tmp_path):
    env = dict(os.environ, DETECTRON2_DATASETS=str(tmp_path / "datasets"), OMP_NUM_THREADS="2")
    _run(["tools/generate_synthetic_data.py", "--config-file", CONFIG, "--num-train", "4", "--num-val", "2",
          "--no-progress"], env)
    warmup, joint = tmp_path / "warmup", tmp_path / "joint"
    log = _run(["tools/train_net.py", "--config-file", WARMUP_CONFIG, "OUTPUT_DIR", str(warmup),
                "SOLVER.MAX_ITER", "2", *TINY, "SOLVER.IMS_PER_BATCH", "2"], env)
    # Recognition losses only (the CPU reader has one, loss_rec, which Detectron2 logs as total_loss alone).
    assert "total_loss" in log and "loss_cls" not in log and "loss_rpn" not in log
    assert (warmup / "model_final.pth").is_file()
    _run(["tools/train_net.py", "--config-file", CONFIG, "OUTPUT_DIR", str(joint), "SOLVER.MAX_ITER", "1",
          "TEST.EVAL_PERIOD", "0", *TINY, "MODEL.WEIGHTS", str(warmup / "model_final.pth")], env)
    log = (joint / "log.txt").read_text()
    assert f"[DetectionCheckpointer] Loading from {warmup / 'model_final.pth'}" in log
    assert "Starting training from iteration 0" in log  # weights only: a new schedule, not a resume
    assert "Some model parameters or buffers are not found" not in log  # every key came from the warm-up
