"""tools/dld_table.py (the paper's comparison table), its rows, and the DLD configs it reads."""
import importlib.util
import json

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model

from conftest import REPO_ROOT
from dld import add_dld_config
from dld.evaluation.comparison import ROW_KEYS, markdown_table, table_row

TEACHER_CONFIG = REPO_ROOT / "configs/synth/text_spotter_R_18_FPN_synth.yaml"
DLD_CONFIG = REPO_ROOT / "configs/synth/dld_R_18_FPN_synth_gamma0.1.yaml"
# The CPU configs shrunk to a fraction of a second per image: narrow heads, 128-px images, two scales.
TINY = [
    "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.TEXT_HEAD.CHANNELS", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
    "MODEL.ROI_MASK_HEAD.CONV_DIM", "16", "MODEL.TEXT_HEAD.MAX_LENGTH", "12", "INPUT.MAX_SIZE_TEST", "128",
    "DATALOADER.NUM_WORKERS", "0", "MODEL.DLD.SCALES", "(0.8, 0.5)", "MODEL.DLD.SELECTOR.BASE_CHANNELS", "8",
    "MODEL.DLD.SELECTOR.INPUT_SIZE", "64",
]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"dld_tools_{name}", REPO_ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cfg(path, opts=()):
    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.merge_from_file(str(path))
    cfg.merge_from_list(list(opts))
    return cfg


def test_table_writes_every_row_and_key(tmp_path, monkeypatch, single_thread, capsys):
    datasets = tmp_path / "datasets"
    _tool("generate_synthetic_data").main(
        ["--num-val", "3", "--splits", "val", "--output", str(datasets), "--num-workers", "1", "--no-progress",
         "--opts", "DATASETS.SYNTH.IMAGE_SIZE", "128"]
    )
    monkeypatch.setenv("DETECTRON2_DATASETS", str(datasets))
    torch.manual_seed(0)
    teacher = tmp_path / "teacher.pth"
    torch.save({"model": build_model(_cfg(TEACHER_CONFIG, TINY)).state_dict()}, teacher)
    student = tmp_path / "dld.pth"
    torch.save({"model": build_model(_cfg(DLD_CONFIG, TINY)).state_dict()}, student)

    out = tmp_path / "table"
    _tool("dld_table").main(
        ["--teacher-config", str(TEACHER_CONFIG), "--teacher-weights", str(teacher),
         "--dld", str(DLD_CONFIG), str(student), "--output-dir", str(out), "--max-images", "2",
         "--report-dir", str(tmp_path / "report"), "--opts", *TINY]
    )
    rows = json.loads((out / "dld_table.json").read_text())
    assert [r["name"] for r in rows] == ["teacher x1", "teacher x0.8", "teacher x0.5", "DLD (gamma=0.1)"]
    for r in rows:
        assert set(ROW_KEYS) <= set(r), r
        for key in ("det_hmean", "e2e_hmean", "word_spotting_hmean"):
            assert 0.0 <= r[key] <= 100.0
        assert r["e2e_hmean_lexicon"] is None  # the synthetic data has no lexicon
        assert r["gflops"] > 0 and r["images_per_s"] > 0
    assert [r["mean_scale"] for r in rows[:3]] == [1.0, 0.8, 0.5]
    assert rows[3]["mean_scale"] in (0.8, 0.65, 0.5)
    # 128 and 102 px both pad to 128: only the half scale is cheaper.
    assert rows[0]["gflops"] >= rows[1]["gflops"] > rows[2]["gflops"]
    # Each row evaluated the first two images only.
    for slug in ("teacher_x1", "teacher_x0.8", "teacher_x0.5", "DLD_gamma=0.1"):
        assert json.loads((out / slug / "text_metrics.json").read_text())["num_images"] == 2
    markdown = (out / "dld_table.md").read_text()
    assert len(markdown.strip().splitlines()) == 2 + len(rows) and "DLD (gamma=0.1)" in markdown
    assert markdown.strip() in capsys.readouterr().out
    # --report-dir: the demo's report from the same rows and the DLD model's predictions on the two images.
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [r["name"] for r in report["rows"]] == [r["name"] for r in rows]
    assert "first 2 images" in report["run"]["data"] and report["run"]["machine"]
    report_md = (tmp_path / "report" / "report.md").read_text()
    assert "first 2 images" in report_md and "Mean selected scale by the size" in report_md
    for png in ("accuracy_vs_cost.png", "selected_scales.png"):
        assert (tmp_path / "report" / png).stat().st_size > 0
    by_size = json.loads((tmp_path / "report" / "scale_by_text_size.json").read_text())
    assert sum(b["images"] for b in by_size["DLD (gamma=0.1)"]) == 2


def test_row_takes_the_generic_lexicon_else_the_full_one_in_percent():
    metrics = {"det_hmean": 0.9, "e2e_hmean": 0.5, "e2e_hmean_full": 0.7, "ws_hmean": 0.6, "gflops": 2.0}
    row = table_row("m", metrics)
    assert row["det_hmean"] == pytest.approx(90.0) and row["word_spotting_hmean"] == pytest.approx(60.0)
    assert (row["e2e_hmean_lexicon"], row["lexicon"]) == (pytest.approx(70.0), "full")
    assert row["gflops"] == 2.0 and row["images_per_s"] is None and row["mean_scale"] is None
    row = table_row("m", {**metrics, "e2e_hmean_generic": 0.8, "e2e_hmean_weak": 0.85})
    assert (row["e2e_hmean_lexicon"], row["lexicon"]) == (pytest.approx(80.0), "generic")
    table = markdown_table([row, table_row("n", {"det_hmean": 0.1})])
    assert "e2e H (generic)" in table and "| n " in table and " - " in table


def test_dld_configs_follow_the_reference_schedules():
    teacher = "output/synth/text_spotter_R_18/model_final.pth"
    for gamma in (0.1, 0.3):
        cfg = _cfg(REPO_ROOT / f"configs/synth/dld_R_18_FPN_synth_gamma{gamma}.yaml")
        assert cfg.MODEL.META_ARCHITECTURE == "DLDTextSpotter" and cfg.MODEL.DLD.SELECTOR.COST_GAMMA == gamma
        assert cfg.MODEL.DLD.TEACHER.WEIGHTS == teacher and cfg.MODEL.DLD.TEACHER.INIT_STUDENT
        assert cfg.MODEL.WEIGHTS == "" and cfg.MODEL.DEVICE == "cpu" and cfg.SOLVER.WARMUP_ITERS == 0
        assert cfg.MODEL.RESNETS.DEPTH == 18 and str(gamma) in cfg.OUTPUT_DIR
    cfg = _cfg(REPO_ROOT / "configs/icdar/dld_R_50_FPN_gamma0.1.yaml")
    assert cfg.MODEL.META_ARCHITECTURE == "DLDTextSpotter" and cfg.MODEL.DLD.SELECTOR.COST_GAMMA == 0.1
    assert cfg.MODEL.RESNETS.DEPTH == 50 and cfg.MODEL.WEIGHTS == ""
    assert cfg.MODEL.DLD.TEACHER.WEIGHTS == "output/icdar/teacher_R_50/model_final.pth"
    assert tuple(cfg.MODEL.DLD.SCALES) == (0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
    # 50 epochs of ~395 iterations at batch 24, LR x0.1 at epochs 30 and 40, no warm-up; teacher input 896/1600.
    assert (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.MAX_ITER, tuple(cfg.SOLVER.STEPS)) == (24, 19750, (11850, 15800))
    assert cfg.SOLVER.WARMUP_ITERS == 0 and cfg.MODEL.DLD.SELECTOR.ITERS_PER_EPOCH == 395
    assert tuple(cfg.INPUT.MIN_SIZE_TRAIN) == (896,) and cfg.INPUT.MAX_SIZE_TRAIN == 1600


def test_rows_of_the_papers_ablations_are_named_by_what_their_configs_do():
    tool = _tool("dld_table")
    files = ["dld_R_18_FPN_synth_gamma0.1.yaml", "dld_R_18_FPN_synth_gamma0.3.yaml",
             "dld_R_18_FPN_synth_drs_only.yaml", "dld_R_18_FPN_synth_skd_x0.6.yaml"]
    cfgs = [_cfg(REPO_ROOT / "configs/synth" / f) for f in files]
    assert tool._dld_names(cfgs, files) == [
        "DLD (gamma=0.1)", "DLD (gamma=0.3)", "DRS without SKD (gamma=0.1)", "SKD at x0.6"]
