"""Shared helpers of the tests/test_reliability_*.py files: tiny data, tiny configs, the tools as subprocesses."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

from conftest import REPO_ROOT

CONFIG = str(REPO_ROOT / "configs/synth/text_spotter_R_18_FPN_synth.yaml")
# The CPU config shrunk to seconds per run: narrow heads, 128-px images, batch 2, no workers, no evaluation.
TINY: List[str] = [
    "MODEL.WEIGHTS", "", "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.TEXT_HEAD.CHANNELS", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
    "MODEL.ROI_MASK_HEAD.CONV_DIM", "16", "MODEL.TEXT_HEAD.TRAIN_JITTER_COPIES", "1",
    "INPUT.MAX_SIZE_TRAIN", "128", "INPUT.MAX_SIZE_TEST", "128",
    "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0", "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()",
]
# DLD on top of TINY: two candidate scales, a small selector, the cheap cost proxy.
TINY_DLD: List[str] = [
    "MODEL.META_ARCHITECTURE", "DLDTextSpotter", "MODEL.DLD.SCALES", "(0.8, 0.5)",
    "MODEL.DLD.SELECTOR.BASE_CHANNELS", "8", "MODEL.DLD.SELECTOR.INPUT_SIZE", "64", "MODEL.DLD.COST.TYPE", "power",
    "MODEL.DLD.SKD.TOPK", "2", "MODEL.DLD.SKD.BEAM_WIDTH", "2",
]


def tiny_cfg(extra: Optional[List[str]] = None):
    from detectron2.config import get_cfg

    from dld import add_dld_config

    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list(TINY + list(extra or []))
    return cfg


def generate_tiny_synth(root: Path, num_train: int = 6, num_val: int = 3, seed: int = 0) -> Path:
    """The synthetic splits at 128 px under ``root`` (a $DETECTRON2_DATASETS), in-process and single-worker."""
    from dld.data.synthetic import SynthConfig, generate_split

    for split, n in (("train", num_train), ("val", num_val)):
        generate_split(SynthConfig(num_images=n, image_size=128, seed=seed), str(root), split, 1, progress=False)
    return root


def write_teacher(path: Path, extra: Optional[List[str]] = None) -> Path:
    """A randomly initialised TextSpotterRCNN of the tiny config, saved as a DLD teacher checkpoint."""
    import torch

    from dld.modeling import TextSpotterRCNN

    torch.manual_seed(0)
    torch.save({"model": TextSpotterRCNN(tiny_cfg(extra)).state_dict()}, path)
    return path


def tool_env(datasets: Path) -> Dict[str, str]:
    return dict(os.environ, DETECTRON2_DATASETS=str(datasets), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def run_tool(args: List[str], env: Dict[str, str], timeout: float = 300, check: bool = True):
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def load_train_net():
    """tools/train_net.py as a module (its Trainer)."""
    spec = importlib.util.spec_from_file_location("dld_tools_train_net", REPO_ROOT / "tools/train_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
