"""Wall time of a model's forward, measured inside the model and reported per image in its outputs."""
from time import perf_counter

import torch

__all__ = ["synchronized_clock"]


def synchronized_clock(device: torch.device) -> float:
    """`time.perf_counter()` once the work queued on `device` is done (CUDA kernels run asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return perf_counter()
