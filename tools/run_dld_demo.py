#!/usr/bin/env python
"""
The whole DLD story on the embedded synthetic data in one command, stage by stage:

  1. data          render the synthetic train/val splits (tools/generate_synthetic_data.py)
  2. warmup        recognition warm-up on word crops (configs/synth/recognition_warmup_R_18_FPN_synth.yaml)
  3. teacher       the text spotter from the warm-up's checkpoint (configs/synth/text_spotter_R_18_FPN_synth.yaml)
  4. dld_gamma0.1  DLD from the teacher, cost weight 0.1 (configs/synth/dld_R_18_FPN_synth_gamma0.1.yaml)
  5. dld_gamma0.3  the same with 0.3
  6. table         teacher x1, the teacher at each fixed scale and both DLD models on synth_text_val
                   (tools/dld_table.py)
  7. report        <report-dir>/report.md (the paper's Table 1, machine, command), report.json, PNG plots
                   (accuracy against GFLOPs, the scales each selector chose) and validation images drawn with
                   the DLD models' words and selected scale

Each stage but the report runs as its own process, so a crash stays in it. A finished stage writes
<report-dir>/stages/<preset>/<stage>.done (its command and wall time) and is skipped when the command is run
again; training stages run with --resume, so a stage that was killed continues from its last checkpoint. The
report is redrawn every time (seconds). Paths are relative to the repository root.

    python tools/run_dld_demo.py --preset quick             # about 20 min on 2 CPU cores, under output/dld_demo_quick
    python tools/run_dld_demo.py --preset short             # full data, short schedules: ~2.5 hours on 2 CPU cores
    python tools/run_dld_demo.py --preset full              # the configs as they are: many hours on CPU
    python tools/run_dld_demo.py --preset quick --dry-run   # the stages and their commands, nothing run
"""
import argparse
import functools
import json
import os
import shlex
import sys
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from dld.utils.stages import Stage, StageFailed, format_duration, read_markers, run_stages

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARMUP_CONFIG = "configs/synth/recognition_warmup_R_18_FPN_synth.yaml"
TEACHER_CONFIG = "configs/synth/text_spotter_R_18_FPN_synth.yaml"
DLD_CONFIGS = ("configs/synth/dld_R_18_FPN_synth_gamma0.1.yaml", "configs/synth/dld_R_18_FPN_synth_gamma0.3.yaml")
EVAL_DATASET = "synth_text_val"


@dataclass(frozen=True)
class Preset:
    """
    Attributes:
        description: one line for the console and the report.
        output_root: training outputs go to <output_root>/<last folder of the config's OUTPUT_DIR>, the table to
            <output_root>/dld_table; "" keeps the configs' OUTPUT_DIRs (the table: output/synth/dld_table).
        datasets: $DETECTRON2_DATASETS of every stage; "" keeps the environment's (default ./datasets).
        data_opts: config overrides of the data generation (DATASETS.SYNTH sizes).
        train_opts: config overrides of each training: "warmup", "teacher" and "dld" (both DLD models).
        eval_images: first images of synth_text_val evaluated in the table (0: all).
        expected_s: expected wall time of each kind of stage on 2 CPU cores ("dld": each DLD model), for the ETA.
    """

    description: str
    output_root: str
    datasets: str
    data_opts: Tuple[str, ...]
    train_opts: Mapping[str, Tuple[str, ...]]
    eval_images: int
    expected_s: Mapping[str, float]


PRESETS: Dict[str, Preset] = {
    "quick": Preset(
        description="600 training and 30 validation images, 120 warm-up, 160 spotter and 50 DLD iterations: "
        "about 20 minutes on 2 CPU cores; it shows the pipeline, the models learn little in that time",
        output_root="output/dld_demo_quick",
        # Splits of their own size: generating them in ./datasets would replace the full ones.
        datasets="output/dld_demo_quick/datasets",
        data_opts=("DATASETS.SYNTH.NUM_TRAIN", "600", "DATASETS.SYNTH.NUM_VAL", "30"),
        train_opts={
            # No evaluation inside the trainings (DATASETS.TEST empty): the table stage evaluates every model.
            "warmup": ("SOLVER.MAX_ITER", "120", "SOLVER.WARMUP_ITERS", "20", "SOLVER.CHECKPOINT_PERIOD", "40",
                       "DATASETS.TEST", "()"),
            "teacher": ("SOLVER.MAX_ITER", "160", "SOLVER.STEPS", "(120,)", "SOLVER.WARMUP_ITERS", "20",
                        "SOLVER.CHECKPOINT_PERIOD", "40", "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()"),
            # The configs' LR steps at 60% and 80%, the Gumbel temperature over 50 "epochs" as in the configs.
            "dld": ("SOLVER.MAX_ITER", "50", "SOLVER.STEPS", "(30, 40)", "SOLVER.CHECKPOINT_PERIOD", "10",
                    "MODEL.DLD.SELECTOR.ITERS_PER_EPOCH", "1", "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()"),
        },
        eval_images=30,
        # Measured on a clean clone, 2 cores (make demo: 22m41s): data 15 s, warm-up 2m45s, spotter 8m39s,
        # each DLD model ~4m45s, table 1m29s.
        expected_s={"data": 20, "warmup": 170, "teacher": 520, "dld": 285, "table": 90, "report": 5},
    ),
    "short": Preset(
        description="the full data and warm-up, 800 spotter and 150 DLD iterations per model, every model "
        "evaluated on the first 150 validation images: about 2.5 hours on 2 CPU cores",
        output_root="output/dld_demo_short",
        datasets="",
        data_opts=(),
        train_opts={
            "warmup": (),
            "teacher": ("SOLVER.MAX_ITER", "800", "SOLVER.STEPS", "(600, 720)", "SOLVER.CHECKPOINT_PERIOD", "200",
                        "DATASETS.TEST", "()"),
            "dld": ("SOLVER.MAX_ITER", "150", "SOLVER.STEPS", "(90, 120)", "SOLVER.CHECKPOINT_PERIOD", "50",
                    "MODEL.DLD.SELECTOR.ITERS_PER_EPOCH", "3", "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()"),
        },
        eval_images=150,
        # Measured on 2 cores: warm-up 1.15 s, spotter 3.1 s, DLD 5.9 s per iteration.
        expected_s={"data": 180, "warmup": 3000, "teacher": 2550, "dld": 900, "table": 700, "report": 30},
    ),
    "full": Preset(
        description="the configs as they are: 10000 training and 300 validation images, 2500 warm-up, 3000 "
        "spotter and 600 DLD iterations per model, evaluations during training: many hours on 2 CPU cores",
        output_root="",
        datasets="",
        data_opts=(),
        train_opts={"warmup": (), "teacher": (), "dld": ()},
        eval_images=0,
        expected_s={"data": 300, "warmup": 1500, "teacher": 4200, "dld": 2100, "table": 450, "report": 30},
    ),
}


@dataclass(frozen=True)
class DemoPaths:
    """Where each stage writes, relative to the repository root (or absolute)."""

    datasets: str
    warmup: str
    teacher: str
    dld: Tuple[str, ...]
    table: str
    report: str
    stages: str


def _load_cfg(config_file: str):
    from dld_table import load_cfg  # a sibling tool; this script's folder is on sys.path when it runs

    return load_cfg(os.path.join(REPO_ROOT, config_file), ())


def demo_paths(preset_name: str, report_dir: str) -> DemoPaths:
    preset = PRESETS[preset_name]

    def out(config_file: str) -> str:
        own = _load_cfg(config_file).OUTPUT_DIR
        return os.path.join(preset.output_root, os.path.basename(own.rstrip("/"))) if preset.output_root else own

    datasets = preset.datasets or os.path.expanduser(os.environ.get("DETECTRON2_DATASETS", "datasets"))
    return DemoPaths(
        datasets=datasets,
        warmup=out(WARMUP_CONFIG),
        teacher=out(TEACHER_CONFIG),
        dld=tuple(out(c) for c in DLD_CONFIGS),
        table=os.path.join(preset.output_root or "output/synth", "dld_table"),
        report=report_dir,
        stages=os.path.join(report_dir, "stages", preset_name),
    )


def _train(config_file: str, opts: Tuple[str, ...], output_dir: str, *extra: str) -> List[str]:
    return [sys.executable, "tools/train_net.py", "--config-file", config_file, "--resume", *opts, *extra,
            "OUTPUT_DIR", output_dir]


def _final(output_dir: str) -> str:
    return os.path.join(output_dir, "model_final.pth")


def _dld_stage_name(config_file: str) -> str:
    return "dld_" + os.path.splitext(config_file)[0].rsplit("_", 1)[-1]  # dld_gamma0.1


def build_stages(preset_name: str, paths: DemoPaths, command: str) -> List[Stage]:
    """The stages of a preset, in order (the report's stage writes its files when run)."""
    preset = PRESETS[preset_name]
    t = preset.expected_s
    stages = [
        Stage("data", "render the synthetic data", t["data"],
              [sys.executable, "tools/generate_synthetic_data.py", "--config-file", TEACHER_CONFIG,
               "--output", paths.datasets, "--opts", *preset.data_opts]),
        Stage("warmup", "recognition warm-up on word crops", t["warmup"],
              _train(WARMUP_CONFIG, preset.train_opts["warmup"], paths.warmup)),
        Stage("teacher", "train the teacher from the warm-up's weights", t["teacher"],
              _train(TEACHER_CONFIG, preset.train_opts["teacher"], paths.teacher,
                     "MODEL.WEIGHTS", _final(paths.warmup))),
    ]
    for config_file, out in zip(DLD_CONFIGS, paths.dld):
        name = _dld_stage_name(config_file)
        stages.append(Stage(name, f"DLD with {name[4:].replace('gamma', 'gamma ')} from the teacher", t["dld"],
                            _train(config_file, preset.train_opts["dld"], out,
                                   "MODEL.DLD.TEACHER.WEIGHTS", _final(paths.teacher))))
    table = [sys.executable, "tools/dld_table.py", "--teacher-config", TEACHER_CONFIG,
             "--teacher-weights", _final(paths.teacher)]
    for config_file, out in zip(DLD_CONFIGS, paths.dld):
        table += ["--dld", config_file, _final(out)]
    table += ["--dataset", EVAL_DATASET, "--output-dir", paths.table, "--max-images", str(preset.eval_images)]
    stages.append(Stage("table", f"evaluate every model on {EVAL_DATASET}", t["table"], table))
    report = functools.partial(write_demo_report, preset_name, paths, command, stages)
    stages.append(Stage("report", f"write the report to {paths.report}", t["report"], function=report, cached=False))
    return stages


def _abs(path: str) -> str:
    return os.path.join(REPO_ROOT, path)


def eval_dataset_dicts(datasets: str) -> List[Dict]:
    """EVAL_DATASET's records under `datasets` ([] with a warning when it is not there)."""
    from detectron2.data import DatasetCatalog

    os.environ["DETECTRON2_DATASETS"] = _abs(datasets)  # where the table stage read EVAL_DATASET from
    try:
        return DatasetCatalog.get(EVAL_DATASET)
    except FileNotFoundError as e:
        print(f"No selected scale by text size nor missed words in the report: {e}", file=sys.stderr)
        return []


def write_demo_report(preset_name: str, paths: DemoPaths, command: str, stages: List[Stage]) -> None:
    """report.md, report.json and the PNGs from the table stage's rows and the DLD models' predictions."""
    from dld_table import _dld_names, write_table_report

    from dld.evaluation.report import ground_truth_words
    from dld.evaluation.scale_by_text_size import image_text_heights
    from dld.utils.machine import describe_machine, machine_info

    with open(_abs(os.path.join(paths.table, "dld_table.json"))) as f:
        rows = json.load(f)
    dld_cfgs = [_load_cfg(c) for c in DLD_CONFIGS]
    dicts = eval_dataset_dicts(paths.datasets)
    markers = read_markers(_abs(paths.stages), [s for s in stages if s.cached])
    table_stage = next(s for s in stages if s.name == "table")
    header = [
        ("preset", f"`{preset_name}`: {PRESETS[preset_name].description}"),
        ("command", f"`{command}`"),
        ("machine", describe_machine(machine_info())),
        ("data", f"`{EVAL_DATASET}` under `{paths.datasets}`"),
        ("table", f"`{shlex.join(table_stage.command)}`"),
        ("stage wall times", ", ".join(f"{k} {format_duration(m['wall_s'])}" for k, m in markers.items()) or "-"),
        ("models", ", ".join(f"`{p}`" for p in (paths.warmup, paths.teacher, *paths.dld))),
    ]
    written = write_table_report(rows, _abs(paths.table), _abs(paths.report), dld_cfgs,
                                 _dld_names(dld_cfgs, DLD_CONFIGS), header, image_text_heights(dicts),
                                 ground_truth_words(dicts))
    with open(written["markdown"]) as f:
        print(f.read())
    print(f"Written {len(written)} files to {paths.report}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--report-dir", default="output/dld_report", help="report.md, report.json, PNGs, stages/")
    parser.add_argument("--dry-run", action="store_true", help="print the stages and commands, run nothing")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    command = "python tools/run_dld_demo.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    preset = PRESETS[args.preset]
    paths = demo_paths(args.preset, args.report_dir)
    stages = build_stages(args.preset, paths, command)
    print(f"DLD demo, preset {args.preset}: {preset.description}")
    print(f"DETECTRON2_DATASETS={paths.datasets}; done-markers in {paths.stages}")
    env = dict(os.environ, DETECTRON2_DATASETS=_abs(paths.datasets), PYTHONUNBUFFERED="1")
    try:
        run_stages(stages, _abs(paths.stages), cwd=REPO_ROOT, env=env, dry_run=args.dry_run)
    except StageFailed as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
