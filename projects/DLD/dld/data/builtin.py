"""
Registers the project's datasets in Detectron2's catalogs. The root is `$DETECTRON2_DATASETS`
(default `./datasets`); a dataset that is not on disk fails when it is loaded, naming the path, never here.
"""
import os
from typing import Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

__all__ = ["register_synthetic_datasets", "datasets_root"]

SYNTHETIC_SPLITS = {"synth_text_train": "train", "synth_text_val": "val"}


def datasets_root() -> str:
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def register_synthetic_datasets(root: Optional[str] = None) -> None:
    """Register `synth_text_train/val`; with `root=None` the root is read when the dataset is loaded."""
    for name, split in SYNTHETIC_SPLITS.items():
        if name in DatasetCatalog.list():
            continue
        DatasetCatalog.register(name, lambda root=root, split=split: _load_synthetic(root, split))
        MetadataCatalog.get(name).set(thing_classes=["text"], evaluator_type="text")


def _load_synthetic(root: Optional[str], split: str):
    from .synthetic import load_synthetic_split

    return load_synthetic_split(root or datasets_root(), split)


register_synthetic_datasets()
