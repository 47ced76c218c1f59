"""Dynamic Low-Resolution Distillation (DLD) for end-to-end scene-text spotting, on Detectron2.

`import dld` registers the project's datasets, ROI heads, meta-architectures and nothing else.
"""
from .config import add_dld_config
from . import data  # noqa: F401  registers datasets
from . import modeling  # noqa: F401  registers ROI heads and meta-architectures
from . import evaluation  # noqa: F401
from . import utils  # noqa: F401

__all__ = ["add_dld_config"]
