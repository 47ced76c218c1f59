"""tools/benchmark.py --onnx: onnxruntime rows beside the eager ones, on the same images and scales."""
import pytest
import torch
from detectron2.modeling import build_model

pytest.importorskip("onnxruntime")

from conftest import REPO_ROOT  # noqa: E402
from reliability_support import TINY, generate_tiny_synth, write_teacher  # noqa: E402
from test_benchmark import SCALES  # noqa: E402
from test_dld_table import DLD_CONFIG, _cfg, _tool  # noqa: E402


def test_benchmark_onnx_rows_beside_the_eager_ones(tmp_path, monkeypatch, single_thread):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "tools"))
    datasets = generate_tiny_synth(tmp_path / "datasets", num_train=1, num_val=2)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(datasets))
    teacher = write_teacher(tmp_path / "teacher.pth", SCALES)
    torch.manual_seed(0)
    student = tmp_path / "dld.pth"
    torch.save({"model": build_model(_cfg(DLD_CONFIG, TINY + SCALES)).eval().state_dict()}, student)
    result = _tool("benchmark").main(
        ["--teacher-config", str(REPO_ROOT / "configs/synth/text_spotter_R_18_FPN_synth.yaml"),
         "--teacher-weights", str(teacher), "--dld", str(DLD_CONFIG), str(student), "--devices", "cpu",
         "--max-images", "2", "--batch-sizes", "1", "--warmup", "0", "--runs", "2", "--onnx",
         "--output-dir", str(tmp_path / "bench"), "--opts", *TINY, *SCALES]
    )
    rows = result["rows"]
    names = ["teacher x1", "teacher x0.75", "teacher x0.5", "DLD (gamma=0.1)"]
    assert [(r["name"], r["device"]) for r in rows] == [
        (n, d) for n in names for d in ("cpu", "cpu (onnxruntime)")
    ]
    for eager, exported in zip(rows[0::2], rows[1::2]):
        assert exported["mean_scale"] == eager["mean_scale"] and exported["scale_counts"] == eager["scale_counts"]
        assert exported["gflops"] == eager["gflops"]
        assert exported["latency_ms_median"] > 0 and exported["images_per_s"] > 0
    assert (tmp_path / "bench/onnx/teacher/spotter.onnx").is_file()
    assert (tmp_path / "bench/onnx/DLD_(gamma=0.1)/selector.onnx").is_file()
