"""Determinism: the same seed gives byte-identical synthetic data and identical evaluation metrics."""
import json

import pytest

from reliability_support import CONFIG, TINY, run_tool, tool_env, write_teacher


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _generate(root, seed: int, workers: int, hash_seed: str):
    env = dict(tool_env(root), PYTHONHASHSEED=hash_seed)
    run_tool(["tools/generate_synthetic_data.py", "--config-file", CONFIG, "--num-train", "3", "--num-val", "2",
              "--seed", str(seed), "--num-workers", str(workers), "--no-progress",
              "--opts", "DATASETS.SYNTH.IMAGE_SIZE", "128"], env)
    return _files(root)


def _evaluate(root, weights, out):
    run_tool(["tools/train_net.py", "--config-file", CONFIG, "--eval-only", *TINY,
              "DATASETS.TEST", "('synth_text_val',)", "MODEL.WEIGHTS", str(weights), "OUTPUT_DIR", str(out),
              "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "TEST.TEXT.SCORE_THRESHOLD", "0.0"], tool_env(root))
    folder = out / "inference/synth_text_val"
    predictions = json.loads((folder / "text_predictions.json").read_text())
    for p in predictions:
        p.pop("file_name")  # the only thing that names the folder the data is in
        p.pop("inference_time_s", None)  # wall time, not a result
    metrics = json.loads((folder / "text_metrics.json").read_text())
    assert metrics.pop("images_per_s") > 0  # wall time, not a result; everything else must match exactly
    return metrics, predictions


@pytest.mark.slow
def test_same_seed_same_bytes_and_same_metrics(tmp_path):
    # Two separate processes, different hash seeds and worker counts: the same files, byte for byte.
    first = _generate(tmp_path / "a", seed=3, workers=1, hash_seed="1")
    second = _generate(tmp_path / "b", seed=3, workers=2, hash_seed="2")
    assert len(first) == (3 + 2) * 3 + 2 and first == second  # image, 2 ground truths per image; meta.json per split
    other = _generate(tmp_path / "c", seed=4, workers=1, hash_seed="1")
    image = "synth_text/val/images/img_1.jpg"
    assert other.keys() == first.keys() and other[image] != first[image]

    # The same weights evaluated on each copy, in separate processes: identical metrics and predictions.
    weights = write_teacher(tmp_path / "weights.pth")
    metrics_a, predictions_a = _evaluate(tmp_path / "a", weights, tmp_path / "eval_a")
    metrics_b, predictions_b = _evaluate(tmp_path / "b", weights, tmp_path / "eval_b")
    assert metrics_a == metrics_b and predictions_a == predictions_b
    assert metrics_a["num_images"] == 2 and sum(len(p["instances"]) for p in predictions_a) > 0
