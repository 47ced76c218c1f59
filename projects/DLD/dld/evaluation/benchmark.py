"""
Inference benchmark of one text spotter (TextSpotterRCNN at a fixed scale, or DLDTextSpotter): FLOPs per image
from the model's own outputs (`gflops`, fvcore), latency (median and p90 of timed runs after warm-up runs) and
images per second at several batch sizes, and the peak memory of each run on the model's device.
"""
import os
import resource
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from tabulate import tabulate
from torch import nn

from ..utils.timing import synchronized_clock

__all__ = ["BENCHMARK_KEYS", "PeakMemory", "benchmark_markdown", "benchmark_model", "latency_stats", "memory_kind"]

MIB = float(2**20)
# Columns of a benchmark row, in table order.
BENCHMARK_KEYS = (
    "name",
    "device",
    "batch_size",
    "gflops",
    "gflops_backbone",
    "mean_scale",
    "latency_ms_median",
    "latency_ms_p90",
    "images_per_s",
    "peak_memory_mib",
)
_HEADERS = {
    "name": "model",
    "device": "device",
    "batch_size": "batch",
    "gflops": "GFLOPs/image",
    "gflops_backbone": "backbone GFLOPs/image",
    "mean_scale": "mean scale",
    "latency_ms_median": "latency median (ms)",
    "latency_ms_p90": "latency p90 (ms)",
    "images_per_s": "images/s",
    "peak_memory_mib": "peak memory (MiB)",
}
_FORMATS = {"gflops": ".3f", "gflops_backbone": ".3f", "mean_scale": ".3f", "latency_ms_median": ".1f", "latency_ms_p90": ".1f",
            "images_per_s": ".2f", "peak_memory_mib": ".1f"}
_STATM = "/proc/self/statm"


def latency_stats(seconds: Sequence[float]) -> Dict[str, float]:
    """Median and 90th percentile (linear interpolation, as numpy's) of run times, in milliseconds."""
    if len(seconds) == 0:
        raise ValueError("no timed runs")
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {"latency_ms_median": float(np.median(ms)), "latency_ms_p90": float(np.percentile(ms, 90))}


def memory_kind(device: torch.device) -> str:
    """What :class:`PeakMemory` measures on `device`, for the output files."""
    if device.type == "cuda":
        return "cuda: torch.cuda.max_memory_allocated after reset_peak_memory_stats (model weights included)"
    if os.path.exists(_STATM):
        return (
            "cpu: peak RSS growth of the process during the run over its RSS before it "
            "(/proc/self/statm, sampled every ms)"
        )
    return "cpu: growth of the process's lifetime peak RSS (getrusage ru_maxrss; 0 unless the run sets a new peak)"


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


class PeakMemory:
    """
    Peak memory of the block on `device`, in bytes (`peak_bytes`, set on exit). CUDA: the allocator's peak
    since the block began; CPU: the highest RSS seen by a thread sampling /proc/self/statm, minus the RSS at
    the start (memory the allocator already holds from an earlier run is not counted again).
    """

    def __init__(self, device: torch.device, interval_s: float = 0.001):
        self.device = torch.device(device)
        self.interval_s = interval_s
        self.peak_bytes = 0

    def _rss_bytes(self) -> int:
        return int(os.pread(self._fd, 128, 0).split()[1]) * self._page

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, self._rss_bytes())

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        self._fd = os.open(_STATM, os.O_RDONLY) if os.path.exists(_STATM) else None
        if self._fd is None:
            self._baseline = _max_rss_bytes()
            return self
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._baseline = self._peak = self._rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = int(torch.cuda.max_memory_allocated(self.device))
            return
        if self._fd is None:
            self.peak_bytes = max(0, _max_rss_bytes() - self._baseline)
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss_bytes())
        os.close(self._fd)
        self.peak_bytes = max(0, self._peak - self._baseline)


def _batches(inputs: Sequence[Dict[str, Any]], batch_size: int, count: int, start: int = 0) -> List[List[Dict]]:
    """`count` batches of the next `batch_size` inputs each, cycling through `inputs`."""
    n = len(inputs)
    return [[inputs[(start + i * batch_size + j) % n] for j in range(batch_size)] for i in range(count)]


def benchmark_model(
    model: nn.Module,
    inputs: Sequence[Dict[str, Any]],
    batch_sizes: Sequence[int] = (1, 8),
    warmup: int = 2,
    runs: int = 10,
) -> List[Dict[str, Any]]:
    """
    Benchmark an eval-mode spotter on mapped test inputs (dicts of `TextDatasetMapper(cfg, is_train=False)`)
    on the model's device. Every input is first run once at batch 1 for the outputs' `gflops` (mean per
    image) and `selected_scale` (mean, and images per scale); this also fills the models' per-size FLOPs
    caches, so that no fvcore count falls into a timed run. Then, per batch size b, `warmup` untimed and
    `runs` timed forwards, each on the next b inputs (cycling through them when there are fewer).

    Returns:
        one row per batch size: `batch_size, gflops, mean_scale, scale_counts, latency_ms_median,
        latency_ms_p90` (of one forward of the batch), `images_per_s` (b / median), `peak_memory_mib` (the
        highest of the timed runs, see :class:`PeakMemory`) and `latency_ms` (every timed run).
    """
    if not inputs:
        raise ValueError("no inputs to benchmark on")
    if runs < 1 or warmup < 0:
        raise ValueError(f"need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    device = torch.device(model.device)  # TextSpotterRCNN and DLDTextSpotter both say where they run
    with torch.no_grad():
        outputs = [model([x])[0] for x in inputs]
    flops = [o.get("gflops") for o in outputs]
    backbone_flops = [o.get("gflops_backbone") for o in outputs]
    scales = [float(o["selected_scale"]) for o in outputs if o.get("selected_scale") is not None]
    cost = {
        "gflops": float(np.mean(flops)) if None not in flops else None,
        "gflops_backbone": float(np.mean(backbone_flops)) if None not in backbone_flops else None,
        "mean_scale": float(np.mean(scales)) if len(scales) == len(outputs) else None,
        "scale_counts": {f"{s:g}": scales.count(s) for s in sorted(set(scales), reverse=True)},
    }

    rows = []
    for b in batch_sizes:
        seconds, peaks = [], []
        with torch.no_grad():
            for batch in _batches(inputs, b, warmup):
                model(batch)
            for batch in _batches(inputs, b, runs, start=warmup * b):
                with PeakMemory(device) as memory:
                    start = synchronized_clock(device)
                    model(batch)
                    seconds.append(synchronized_clock(device) - start)
                peaks.append(memory.peak_bytes)
        stats = latency_stats(seconds)
        rows.append({
            "batch_size": int(b),
            **cost,
            **stats,
            "images_per_s": 1000.0 * b / stats["latency_ms_median"],
            "peak_memory_mib": max(peaks) / MIB,
            "latency_ms": [1000.0 * s for s in seconds],
        })
    return rows


def benchmark_markdown(rows: Sequence[Dict[str, Any]]) -> str:
    """The rows (with `name` and `device`) as a Markdown table; a missing value is "-"."""
    body = []
    for r in rows:
        cells = []
        for key in BENCHMARK_KEYS:
            value: Optional[Any] = r.get(key)
            if value is None:
                cells.append("-")
            elif key in _FORMATS:
                cells.append(format(value, _FORMATS[key]))
            else:
                cells.append(str(value))
        body.append(cells)
    return tabulate(
        body,
        headers=[_HEADERS[k] for k in BENCHMARK_KEYS],
        tablefmt="pipe",
        disable_numparse=True,
        colalign=["left", "left"] + ["right"] * (len(BENCHMARK_KEYS) - 2),
    )
