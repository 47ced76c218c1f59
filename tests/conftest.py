import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that takes more than a few seconds")
    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def single_thread():
    """One torch thread: on two busy cores, two threads make tiny networks ~100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared real data is absent ({SHARED_DATA}); it sits beside the repository in CI only")
    return SHARED_DATA


@pytest.fixture
def small_cfg():
    """The CPU-sized spotter config, shrunk further so a forward/backward takes well under a second."""
    from detectron2.config import get_cfg

    from dld import add_dld_config

    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.merge_from_file(str(REPO_ROOT / "configs/synth/text_spotter_R_18_FPN_synth.yaml"))
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.TEXT_HEAD.CHANNELS = 32
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 64
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 32
    cfg.MODEL.TEXT_HEAD.MAX_LENGTH = 12
    # The paper's reading path (masked P2 features, attention decoder), whose behaviour most tests pin down;
    # the CPU recipe's image/CTC path has tests of its own (test_reading_paths.py, small_image_ctc_cfg).
    cfg.MODEL.TEXT_HEAD.IN_FEATURE = "p2"
    cfg.MODEL.TEXT_HEAD.DECODER = "attention"
    cfg.MODEL.TEXT_HEAD.ENCODER_LAYERS = 2
    cfg.MODEL.TEXT_HEAD.CTC_LOSS_WEIGHT = 1.0
    return cfg


@pytest.fixture
def small_image_ctc_cfg(small_cfg):
    """small_cfg with the CPU recipe's reading path: words cut from the input image, read with CTC."""
    small_cfg.MODEL.TEXT_HEAD.IN_FEATURE = "image"
    small_cfg.MODEL.TEXT_HEAD.DECODER = "ctc"
    small_cfg.MODEL.TEXT_HEAD.ENCODER_LAYERS = 1
    return small_cfg


def small_dld_cfg(cfg):
    """A copy of a small spotter config as a DLD model: two scales, a narrow selector, the power cost (no FLOPs)."""
    cfg = cfg.clone()
    cfg.MODEL.META_ARCHITECTURE = "DLDTextSpotter"
    cfg.MODEL.DLD.SCALES = (0.8, 0.5)
    cfg.MODEL.DLD.SELECTOR.BASE_CHANNELS = 8
    cfg.MODEL.DLD.SELECTOR.INPUT_SIZE = 64
    cfg.MODEL.DLD.COST.TYPE = "power"
    return cfg


def two_word_batch(cfg, with_words=True):
    """Two 128x160 noise images, each with the words "hello" and "Word" (or none), as a DLD training batch."""
    import numpy as np
    import torch
    from detectron2.structures import Boxes, Instances, PolygonMasks

    from dld.data.charset import build_charset_encoder

    enc = build_charset_encoder(cfg)
    out = []
    for _ in range(2):
        inst = Instances((128, 160))
        if with_words:
            polys = [[10, 10, 90, 10, 90, 30, 10, 30], [20, 60, 140, 60, 140, 100, 20, 100]]
            inst.gt_boxes = Boxes(torch.tensor([[10.0, 10, 90, 30], [20, 60, 140, 100]]))
            inst.gt_masks = PolygonMasks([[np.array(p, dtype=np.float64)] for p in polys])
            inst.gt_texts = enc.encode_batch(["hello", "Word"])
        else:
            inst.gt_boxes = Boxes(torch.zeros((0, 4)))
            inst.gt_masks = PolygonMasks([])
            inst.gt_texts = enc.encode_batch([])
        inst.gt_classes = torch.zeros(len(inst), dtype=torch.long)
        out.append({"image": torch.rand(3, 128, 160) * 255, "instances": inst, "height": 128, "width": 160})
    return out
