"""tools/run_dld_demo.py: stages that resume, presets, dry run and the report; nothing is trained."""
import json
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO_ROOT
from dld.evaluation.comparison import ROW_KEYS, table_row
from dld.evaluation.report import pick_examples
from dld.utils.report_plots import draw_example
from dld.utils.stages import Stage, StageFailed, marker_path, run_stages
from test_dld_table import _cfg, _tool


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "tools"))  # run_dld_demo.py imports its sibling dld_table.py
    return _tool("run_dld_demo")


def test_finished_stages_are_skipped_and_a_failed_one_is_retried(tmp_path):
    calls = []
    ok, counter = tmp_path / "ok", tmp_path / "train_runs"
    script = (f"import os, sys; open({str(counter)!r}, 'a').write('x'); "
              f"sys.exit(0 if os.path.exists({str(ok)!r}) else 3)")
    train = [sys.executable, "-c", script]
    stages = [
        Stage("gen", "generate", 1.0, function=lambda: calls.append("gen")),
        Stage("train", "train", 1.0, train + ["--resume"]),
        Stage("report", "report", 1.0, function=lambda: calls.append("report"), cached=False),
    ]
    markers = tmp_path / "stages"
    lines = []
    with pytest.raises(StageFailed, match="(?s)exit status 3.*resumes from its last checkpoint"):
        run_stages(stages, str(markers), log=lines.append)
    assert calls == ["gen"] and counter.read_text() == "x"
    assert (markers / "gen.done").is_file() and not (markers / "train.done").exists()

    ok.touch()
    lines.clear()
    assert run_stages(stages, str(markers), log=lines.append) == ["train", "report"]
    assert calls == ["gen", "report"] and counter.read_text() == "xx"
    assert lines[0] == f"[stage 1/3] gen: done before ({marker_path(str(markers), stages[0])}), skipped"
    record = json.loads((markers / "train.done").read_text())
    assert record["stage"] == "train" and record["command"].endswith("--resume") and record["wall_s"] >= 0

    # Everything cached is done now; the uncached report runs again.
    assert run_stages(stages, str(markers), log=lambda _: None) == ["report"]
    assert calls == ["gen", "report", "report"] and counter.read_text() == "xx"


def test_progress_lines_give_expected_time_elapsed_and_eta(tmp_path):
    now = [100.0]

    def advance(seconds):
        return lambda: now.__setitem__(0, now[0] + seconds)

    stages = [Stage("a", "first", 60.0, function=advance(50.0)), Stage("b", "second", 120.0, function=advance(130.0)),
              Stage("c", "third", 30.0, function=advance(1.0))]
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "c.done").write_text("{}")
    lines = []
    run_stages(stages, str(tmp_path / "stages"), log=lines.append, clock=lambda: now[0])
    starts = [line for line in lines if line.startswith("[stage") and "expected" in line]
    assert len(starts) == 2
    assert starts[0].startswith("[stage 1/3] a: first ... expected ~1m00s; elapsed 0s")
    assert starts[0].endswith("(~3m00s left)")  # a and b; c is done
    assert "elapsed 50s" in starts[1] and starts[1].endswith("(~2m00s left)")
    assert "[stage 2/3] b done in 2m10s" in lines and "[stage 3/3] c: done before" in lines[-2]
    assert lines[-1] == "All 3 stages done, 3m00s in this run"


def test_a_stage_is_a_command_or_a_function():
    with pytest.raises(ValueError):
        Stage("x", "neither", 1.0)
    with pytest.raises(ValueError):
        Stage("x", "both", 1.0, ["true"], function=lambda: None)


def test_presets_override_existing_keys_and_quick_fits_in_25_minutes(demo):
    for name, preset in demo.PRESETS.items():
        assert set(preset.expected_s) == {"data", "warmup", "teacher", "dld", "table", "report"}, name
        for kind, config in (("warmup", demo.WARMUP_CONFIG), ("teacher", demo.TEACHER_CONFIG),
                             ("dld", demo.DLD_CONFIGS[0])):
            cfg = _cfg(REPO_ROOT / config, preset.train_opts[kind])  # a wrong key raises here
            assert all(step < cfg.SOLVER.MAX_ITER for step in cfg.SOLVER.STEPS), (name, kind)
            assert cfg.SOLVER.CHECKPOINT_PERIOD <= cfg.SOLVER.MAX_ITER
        _cfg(REPO_ROOT / demo.TEACHER_CONFIG, preset.data_opts)
    quick = demo.PRESETS["quick"]
    e = quick.expected_s
    assert e["data"] + e["warmup"] + e["teacher"] + 2 * e["dld"] + e["table"] + e["report"] <= 25 * 60
    assert quick.output_root and quick.datasets.startswith(quick.output_root)  # the full data stays untouched
    assert demo.PRESETS["full"].train_opts == {"warmup": (), "teacher": (), "dld": ()}


def _commands(out: str):
    return [line.strip() for line in out.splitlines() if line.startswith("    ")]


def test_dry_run_prints_the_commands_and_runs_nothing(demo, tmp_path, capsys):
    report = tmp_path / "report"
    assert demo.main(["--preset", "quick", "--dry-run", "--report-dir", str(report)]) == 0
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("[stage")] == [
        f"[stage {k}/7] {n}" for k, n in
        enumerate(["data", "warmup", "teacher", "dld_gamma0.1", "dld_gamma0.3", "table", "report"], 1)
    ]
    data, warmup, teacher, dld1, dld3, table, rep = _commands(out)
    assert "generate_synthetic_data.py" in data and "--output output/dld_demo_quick/datasets" in data
    assert "DATASETS.SYNTH.NUM_TRAIN 600" in data
    for cmd, config, out_dir in ((warmup, demo.WARMUP_CONFIG, "recognition_warmup_R_18"),
                                 (teacher, demo.TEACHER_CONFIG, "text_spotter_R_18"),
                                 (dld1, demo.DLD_CONFIGS[0], "dld_R_18_gamma0.1"),
                                 (dld3, demo.DLD_CONFIGS[1], "dld_R_18_gamma0.3")):
        assert f"tools/train_net.py --config-file {config} --resume" in cmd
        assert cmd.endswith(f"OUTPUT_DIR output/dld_demo_quick/{out_dir}") and "SOLVER.MAX_ITER" in cmd
    assert "MODEL.WEIGHTS output/dld_demo_quick/recognition_warmup_R_18/model_final.pth" in teacher
    for cmd in (dld1, dld3):
        assert "MODEL.DLD.TEACHER.WEIGHTS output/dld_demo_quick/text_spotter_R_18/model_final.pth" in cmd
    assert "--teacher-weights output/dld_demo_quick/text_spotter_R_18/model_final.pth" in table
    assert "output/dld_demo_quick/dld_R_18_gamma0.3/model_final.pth" in table and "--max-images 30" in table
    assert rep == f"(in this process) write the report to {report}"
    assert not report.exists()

    # The full preset: the configs' own schedules and OUTPUT_DIRs; a finished stage is reported as skipped.
    (report / "stages" / "full").mkdir(parents=True)
    (report / "stages" / "full" / "data.done").write_text("{}")
    assert demo.main(["--preset", "full", "--dry-run", "--report-dir", str(report)]) == 0
    out = capsys.readouterr().out
    assert "[stage 1/7] data: done before" in out and "Dry run: 6 of 7 stages would run" in out
    warmup, teacher, dld1, dld3, table, _ = _commands(out)
    assert "SOLVER.MAX_ITER" not in out and teacher.endswith("OUTPUT_DIR output/synth/text_spotter_R_18")
    assert "MODEL.DLD.TEACHER.WEIGHTS output/synth/text_spotter_R_18/model_final.pth" in dld1
    assert "--output-dir output/synth/dld_table --max-images 0" in table


def test_examples_cover_the_selected_scales_first():
    records = [{"i": i, "selected_scale": s} for i, s in enumerate([0.5, 0.5, 0.5, 0.8, 0.3, 0.5])]
    assert [r["i"] for r in pick_examples(records, 4)] == [4, 0, 3, 1]
    assert [r["i"] for r in pick_examples(records, 2)] == [4, 0]
    assert pick_examples(records[:1], 3) == records[:1]


def test_draw_example_draws_words_where_they_are_on_an_enlarged_image(tmp_path):
    image = np.full((64, 48, 3), 128, dtype=np.uint8)
    word = {"polygon": [[30, 8], [46, 8], [46, 20], [30, 20]], "text": "hi", "score": 0.9}
    path = str(tmp_path / "example.png")
    draw_example(image, [word, {"polygon": [[None, 1], [2, 3], [4, 5]], "text": "x", "score": None}],
                 "m: scale 0.5", path, min_side=256)
    drawn = cv2.imread(path)
    assert drawn.shape[:2] == (256, 192)  # enlarged 4x
    assert np.abs(drawn[56:76, 150:178].astype(int) - 128).max() > 20  # inside the word, scaled by 4
    assert np.abs(drawn[200:250, 20:100].astype(int) - 128).max() <= 2  # far from the word and the caption


def _write_table_and_predictions(table, datasets, dld_names, slug):
    images = []
    for i in range(1, 5):
        path = datasets / f"img_{i}.jpg"
        cv2.imwrite(str(path), np.random.default_rng(i).integers(0, 255, (96, 128, 3), dtype=np.uint8))
        images.append(path)
    metrics = {"det_hmean": 0.9, "e2e_hmean": 0.4, "ws_hmean": 0.5, "images_per_s": 3.0}
    rows = [table_row("teacher x1", {**metrics, "gflops": 10.0, "mean_scale": 1.0}),
            table_row("teacher x0.5", {**metrics, "e2e_hmean": 0.2, "gflops": 3.0, "mean_scale": 0.5})]
    word = {"polygon": [[10, 10], [60, 10], [60, 30], [10, 30]], "text": "word", "score": 0.9, "text_score": 0.8}
    for name, scales in zip(dld_names, ([0.8, 0.5, 0.5, 0.3], [0.3, 0.3, 0.3, 0.3])):
        rows.append(table_row(name, {**metrics, "gflops": 4.0, "mean_scale": float(np.mean(scales))}))
        records = [{"image_id": i, "file_name": str(p), "selected_scale": s, "gflops": 4.0, "instances": [word]}
                   for i, (p, s) in enumerate(zip(images, scales), 1)]
        (table / slug(name)).mkdir(parents=True)  # tools/dld_table.py's folder of the row
        (table / slug(name) / "text_predictions.json").write_text(json.dumps(records))
    (table / "dld_table.json").write_text(json.dumps(rows))
    return rows


def test_report_from_a_table_writes_markdown_json_and_pngs(demo, tmp_path, capsys, monkeypatch):
    table, datasets, report = tmp_path / "table", tmp_path / "datasets", tmp_path / "report"
    datasets.mkdir()
    names = ["DLD (gamma=0.1)", "DLD (gamma=0.3)"]
    rows = _write_table_and_predictions(table, datasets, names, _tool("dld_table")._slug)
    heights = {str(datasets / f"img_{i}.jpg"): h for i, h in enumerate([0.02, 0.05, 0.1, 0.2], 1)}
    monkeypatch.setattr("dld.evaluation.scale_by_text_size.image_text_heights",
                        lambda dicts: heights if dicts else {})
    # Each image's annotations: the word every model reads, and one that none reads.
    read, missed = [10, 10, 60, 10, 60, 30, 10, 30], [20, 50, 100, 50, 100, 70, 20, 70]
    dicts = [{"file_name": name, "height": 96, "width": 128, "annotations": [
        {"segmentation": [read], "text": "word", "iscrowd": 0}, {"segmentation": [missed], "text": "gone", "iscrowd": 0}]}
        for name in heights]
    monkeypatch.setattr(demo, "eval_dataset_dicts", lambda root: dicts if root == str(datasets) else [])
    paths = demo.DemoPaths(datasets=str(datasets), warmup="w", teacher="t", dld=("d1", "d3"), table=str(table),
                           report=str(report), stages=str(report / "stages" / "quick"))
    stages = demo.build_stages("quick", paths, "python tools/run_dld_demo.py --preset quick")
    (report / "stages" / "quick").mkdir(parents=True)
    (report / "stages" / "quick" / "teacher.done").write_text(json.dumps({"wall_s": 125.0}))
    stages[-1].function()

    reported = json.loads((report / "report.json").read_text())
    assert "python tools/run_dld_demo.py --preset quick" in json.dumps(reported["run"])  # the run's context
    reported = reported["rows"]
    assert [list(r) for r in reported] == [list(ROW_KEYS)] * 4  # "lexicon" and anything else left out
    assert [r["name"] for r in reported] == [r["name"] for r in rows]
    assert reported[1]["e2e_hmean"] == pytest.approx(20.0) and reported[2]["gflops"] == 4.0
    md = (report / "report.md").read_text()
    for needle in ("`quick`", "python tools/run_dld_demo.py --preset quick", "teacher 2m05s", "| teacher x0.5 ",
                   "GFLOPs/image", "mean scale", "![accuracy against cost](accuracy_vs_cost.png)"):
        assert needle in md, needle
    # Selected scales: counts per candidate scale of the DLD configs (0.8 ... 0.3).
    assert "|   x0.8 |   x0.7 |   x0.6 |   x0.5 |   x0.4 |   x0.3 |" in md
    scale_section = md[md.index("|   x0.8 |   x0.7 |"):]
    scale_rows = [line for line in scale_section.splitlines() if line.startswith("| DLD") and line.count("|") == 10]
    assert [[c.strip() for c in line.split("|")[2:-1]] for line in scale_rows] == [
        ["4", "0.525", "1", "0", "0", "2", "0", "1"], ["4", "0.300", "0", "0", "0", "0", "0", "4"]]
    for png in ("accuracy_vs_cost.png", "selected_scales.png"):
        assert cv2.imread(str(report / png)) is not None, png
    examples = sorted(p.name for p in (report / "examples").iterdir())
    # Three per model; the first model's cover its three distinct scales (images 4, 2, 1).
    assert examples == ["model0_img_1.png", "model0_img_2.png", "model0_img_4.png",
                        "model1_img_1.png", "model1_img_2.png", "model1_img_3.png"]
    assert all(cv2.imread(str(report / "examples" / e)).shape[:2] == (384, 512) for e in examples)
    assert "![DLD (gamma=0.1): scale 0.3, 1 words missed (red), img_4](examples/model0_img_4.png)" in md
    # Mean selected scale by text size, 4 images in 3 bins (2, 1, 1): model 0 chose 0.8, 0.5 | 0.5 | 0.3.
    size_rows = [[c.strip() for c in line.split("|")[1:-1]] for line in md.splitlines() if line.startswith("| DLD") and "%" in line]
    assert size_rows[:3] == [["DLD (gamma=0.1)", "2.0-5.0%", "2", "0.650"],
                             ["DLD (gamma=0.1)", "10.0-10.0%", "1", "0.500"],
                             ["DLD (gamma=0.1)", "20.0-20.0%", "1", "0.300"]]
    by_size = json.loads((report / "scale_by_text_size.json").read_text())
    assert [r["mean_scale"] for r in by_size["DLD (gamma=0.3)"]] == pytest.approx([0.3, 0.3, 0.3])
    assert md.strip() in capsys.readouterr().out
