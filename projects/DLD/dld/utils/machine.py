"""What machine a measurement ran on, for the benchmark and report files."""
import os
import platform
from typing import Any, Dict

import torch

__all__ = ["describe_machine", "machine_info"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", "r", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> Dict[str, Any]:
    """CPU model and cores, torch threads, OS, Python and torch versions, and the CUDA GPUs when there are any."""
    info: Dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpus": [],
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def describe_machine(info: Dict[str, Any]) -> str:
    """One line from :func:`machine_info`."""
    gpus = ", ".join(info.get("gpus") or []) or "no GPU"
    return (
        f"{info['cpu']} ({info['cpu_cores']} cores, {info['torch_threads']} torch threads), {gpus}; "
        f"{info['os']}, Python {info['python']}, torch {info['torch']}"
    )
