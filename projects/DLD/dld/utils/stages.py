"""
A pipeline of stages, each a subprocess (a crash stays in its process) or a function, that a rerun resumes: a
finished stage leaves a done-marker (`<stages_dir>/<name>.done`, JSON with its command and wall time) and is
skipped the next time. Progress lines say which stage runs, its expected time and the ETA of the whole run.
"""
import datetime
import json
import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence

__all__ = ["Stage", "StageFailed", "format_duration", "marker_path", "read_markers", "run_stages"]


@dataclass(frozen=True)
class Stage:
    """
    Attributes:
        name: short name, also the marker's file name.
        description: what it does, for the progress line.
        expected_s: expected wall time in seconds, for the ETA.
        command: argv of the subprocess; or
        function: called in this process instead of a command.
        cached: skip the stage when its marker exists (False: run it every time, for a cheap last stage).
    """

    name: str
    description: str
    expected_s: float
    command: Optional[Sequence[str]] = None
    function: Optional[Callable[[], None]] = None
    cached: bool = True

    def __post_init__(self):
        if (self.command is None) == (self.function is None):
            raise ValueError(f"stage {self.name!r} needs exactly one of command and function")

    def display(self) -> str:
        return shlex.join(self.command) if self.command is not None else f"(in this process) {self.description}"


class StageFailed(RuntimeError):
    pass


def format_duration(seconds: float) -> str:
    """'1h02m', '4m05s' or '12s'."""
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def marker_path(stages_dir: str, stage: Stage) -> str:
    return os.path.join(stages_dir, f"{stage.name}.done")


def _is_done(stages_dir: str, stage: Stage) -> bool:
    return stage.cached and os.path.isfile(marker_path(stages_dir, stage))


def _write_marker(stages_dir: str, stage: Stage, wall_s: float) -> None:
    os.makedirs(stages_dir, exist_ok=True)
    path = marker_path(stages_dir, stage)
    record = {
        "stage": stage.name,
        "command": stage.display(),
        "wall_s": round(wall_s, 1),
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=2)
    os.replace(path + ".tmp", path)


def run_stages(
    stages: Sequence[Stage],
    stages_dir: str,
    *,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> List[str]:
    """
    Run the stages in order, skipping those with a done-marker. A command runs with `cwd` and `env` and its
    output goes to this process's; a non-zero exit raises :class:`StageFailed` (later stages are not run,
    the failed one has no marker, so a rerun retries it). With `dry_run`, only print what would run.

    Returns:
        names of the stages run (with `dry_run`: that would run).
    """
    n = len(stages)
    pending = {s.name: not _is_done(stages_dir, s) for s in stages}
    start = clock()
    ran = []
    for k, stage in enumerate(stages, 1):
        prefix = f"[stage {k}/{n}] {stage.name}"
        if not pending[stage.name]:
            log(f"{prefix}: done before ({marker_path(stages_dir, stage)}), skipped")
            continue
        if dry_run:
            log(f"{prefix}: {stage.description}, expected ~{format_duration(stage.expected_s)}\n    {stage.display()}")
            ran.append(stage.name)
            continue
        left = sum(s.expected_s for s in stages[k - 1 :] if pending[s.name])
        eta = datetime.datetime.now() + datetime.timedelta(seconds=left)
        log(
            f"{prefix}: {stage.description} ... expected ~{format_duration(stage.expected_s)}; "
            f"elapsed {format_duration(clock() - start)}, ETA of the run {eta:%H:%M:%S} (~{format_duration(left)} left)"
        )
        log(f"    {stage.display()}")
        stage_start = clock()
        if stage.command is not None:
            code = subprocess.call(list(stage.command), cwd=cwd, env=dict(env) if env is not None else None)
            if code != 0:
                raise StageFailed(
                    f"{prefix} failed with exit status {code}: {stage.display()}\n"
                    "Fix the cause and run the same command again: finished stages are skipped"
                    + (", training resumes from its last checkpoint." if "--resume" in stage.command else ".")
                )
        else:
            stage.function()
        wall = clock() - stage_start
        _write_marker(stages_dir, stage, wall)
        pending[stage.name] = False
        ran.append(stage.name)
        log(f"{prefix} done in {format_duration(wall)}")
    if dry_run:
        log(f"Dry run: {len(ran)} of {n} stages would run")
    else:
        log(f"All {n} stages done, {format_duration(clock() - start)} in this run")
    return ran


def read_markers(stages_dir: str, stages: Sequence[Stage]) -> Dict[str, Dict]:
    """The done-markers of `stages` that exist, by stage name."""
    out = {}
    for s in stages:
        path = marker_path(stages_dir, s)
        if os.path.isfile(path):
            with open(path) as f:
                out[s.name] = json.load(f)
    return out
