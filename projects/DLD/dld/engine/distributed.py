"""DistributedDataParallel for a model on CPU (Gloo) as well as on GPUs."""
from detectron2.engine.defaults import create_ddp_model as _d2_create_ddp_model
from detectron2.utils import comm
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["create_ddp_model"]


def create_ddp_model(model: nn.Module, **kwargs) -> nn.Module:
    """
    Detectron2's ``create_ddp_model`` (the model itself in a single process), except that a model on CPU is
    wrapped without ``device_ids``: Detectron2 passes ``[local_rank]``, which DDP rejects for CPU modules, so
    ``--num-gpus N`` on a machine without GPUs (Gloo) would fail.
    """
    if comm.get_world_size() == 1:
        return model
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    if on_cpu and "device_ids" not in kwargs:
        return DistributedDataParallel(model, **kwargs)
    return _d2_create_ddp_model(model, **kwargs)
