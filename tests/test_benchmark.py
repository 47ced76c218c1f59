"""tools/benchmark.py and dld.evaluation.benchmark: FLOPs, latency, throughput and peak memory of inference."""
import itertools
import json
import time
from collections import Counter

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model

from conftest import REPO_ROOT
from dld.evaluation.benchmark import PeakMemory, latency_stats
from dld.modeling.cost import count_selector_flops, flops_breakdown
from dld.modeling.lowres import lowres_size
from reliability_support import CONFIG, TINY, generate_tiny_synth, tiny_cfg, write_teacher
from test_dld_table import DLD_CONFIG, _cfg, _tool

# Three sizes that pad to three different multiples of 32 on the 128-px images: 128, 96, 64.
SCALES = ["MODEL.DLD.SCALES", "(0.75, 0.5)", "MODEL.DLD.SELECTOR.BASE_CHANNELS", "8",
          "MODEL.DLD.SELECTOR.INPUT_SIZE", "64"]


def test_latency_stats_are_the_median_and_90th_percentile_in_ms():
    stats = latency_stats([0.004, 0.001, 0.003, 0.002, 0.010])
    assert stats["latency_ms_median"] == pytest.approx(3.0)
    assert stats["latency_ms_p90"] == pytest.approx(7.6)  # between the 4th (4 ms) and 5th (10 ms) value
    with pytest.raises(ValueError):
        latency_stats([])


def test_peak_memory_on_cpu_sees_a_buffer_freed_before_the_block_ends():
    with PeakMemory(torch.device("cpu")) as memory:
        buffer = np.ones((64, 2**20), dtype=np.uint8)  # 64 MiB, touched
        time.sleep(0.05)
        del buffer
    assert 60 * 2**20 <= memory.peak_bytes < 80 * 2**20
    with PeakMemory(torch.device("cpu")) as idle:
        time.sleep(0.01)
    assert idle.peak_bytes < 8 * 2**20


def test_benchmark_tool_measures_every_model_scale_and_batch(tmp_path, monkeypatch, single_thread, capsys):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "tools"))  # benchmark.py imports its sibling dld_table.py
    datasets = generate_tiny_synth(tmp_path / "datasets", num_train=1, num_val=2)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(datasets))
    teacher = write_teacher(tmp_path / "teacher.pth", SCALES)
    torch.manual_seed(0)
    dld_model = build_model(_cfg(DLD_CONFIG, TINY + SCALES)).eval()
    student = tmp_path / "dld.pth"
    torch.save({"model": dld_model.state_dict()}, student)

    out = tmp_path / "bench"
    result = _tool("benchmark").main(
        ["--teacher-config", CONFIG, "--teacher-weights", str(teacher), "--dld", str(DLD_CONFIG), str(student),
         "--devices", "cpu", "--max-images", "2", "--batch-sizes", "1", "3", "--warmup", "1", "--runs", "3",
         "--output-dir", str(out), "--opts", *TINY, *SCALES]
    )
    rows = result["rows"]
    names = ["teacher x1", "teacher x0.75", "teacher x0.5", "DLD (gamma=0.1)"]
    assert [(r["name"], r["device"], r["batch_size"]) for r in rows] == [
        (n, "cpu", b) for n in names for b in (1, 3)
    ]
    by_name = {n: [r for r in rows if r["name"] == n] for n in names}
    for r in rows:
        assert len(r["latency_ms"]) == 3 and min(r["latency_ms"]) > 0
        assert 0 < r["latency_ms_median"] <= r["latency_ms_p90"] <= max(r["latency_ms"])
        assert r["images_per_s"] == pytest.approx(1000.0 * r["batch_size"] / r["latency_ms_median"])
        assert r["peak_memory_mib"] >= 0
    # FLOPs: the teacher's backbone + FPN + RPN count at the size each fixed scale runs, growing with the
    # scale; the whole model's (at the real RoI counts) on top of it.
    model = build_model(tiny_cfg(SCALES)).eval()
    sizes = [(d["height"], d["width"]) for d in DatasetCatalog.get("synth_text_val")]
    assert len(sizes) == 2 and sizes[0] != sizes[1]

    def student(size, scale):
        parts = flops_breakdown(model, lowres_size(*size, scale), num_detections=10)
        return parts["backbone"] + parts["rpn"]

    for r in rows:
        assert r["gflops"] > r["gflops_backbone"]
    for name, scale in (("teacher x1", 1.0), ("teacher x0.75", 0.75), ("teacher x0.5", 0.5)):
        expected = np.mean([student(size, scale) for size in sizes])
        assert [r["gflops_backbone"] for r in by_name[name]] == pytest.approx([expected] * 2)
        assert [r["mean_scale"] for r in by_name[name]] == [scale, scale]
    g = [by_name[n][0]["gflops_backbone"] for n in names]
    assert g[0] > g[1] > g[2]
    # DLD: the selector plus the student at the scale chosen for each image, for some choice with these counts.
    dld = by_name["DLD (gamma=0.1)"]
    counts = dld[0]["scale_counts"]
    assert set(counts) <= {"0.75", "0.5"} and sum(counts.values()) == 2 and dld[1]["scale_counts"] == counts
    assert dld[0]["mean_scale"] == pytest.approx(sum(float(s) * n for s, n in counts.items()) / 2)
    selector = [count_selector_flops(dld_model.selector, size) for size in sizes]
    candidates = [
        np.mean([sel + student(size, s) for sel, size, s in zip(selector, sizes, choice)])
        for choice in itertools.product((0.75, 0.5), repeat=2)
        if Counter(f"{s:g}" for s in choice) == Counter(counts)
    ]
    assert any(dld[0]["gflops_backbone"] == pytest.approx(c) for c in candidates), (dld[0]["gflops_backbone"],
                                                                                      candidates)

    assert "cpu" in result["memory"] and "RSS" in result["memory"]["cpu"]
    assert json.loads((out / "benchmark.json").read_text())["rows"] == rows
    markdown = (out / "benchmark.md").read_text()
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(rows) and "peak memory (MiB)" in table[0]
    assert "\n".join(table) in capsys.readouterr().out
