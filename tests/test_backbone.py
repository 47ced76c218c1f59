"""build_basic_resnet_fpn_backbone: R-18/34-FPN whose widths follow the config."""
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone

from dld import add_dld_config


def _cfg(stem: int, res2: int, depth: int = 18):
    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.MODEL.BACKBONE.NAME = "build_basic_resnet_fpn_backbone"
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = stem
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = res2
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    return cfg


def test_widths_follow_the_config_and_64_is_detectron2s_r18():
    narrow = build_backbone(_cfg(32, 32))
    stages = narrow.bottom_up.output_shape()
    assert [stages[f"res{i}"].channels for i in (2, 3, 4, 5)] == [32, 64, 128, 256]
    outputs = narrow(torch.zeros(1, 3, 64, 96))
    assert {k: tuple(v.shape[1:]) for k, v in outputs.items()} == {
        "p2": (32, 16, 24), "p3": (32, 8, 12), "p4": (32, 4, 6), "p5": (32, 2, 3), "p6": (32, 1, 2)
    }
    standard_cfg = _cfg(64, 64)
    standard_cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    ours = build_backbone(_cfg(64, 64))
    standard = build_backbone(standard_cfg)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in standard.state_dict().items()}


def test_other_depths_are_refused():
    with pytest.raises(ValueError, match="R-18/34"):
        build_backbone(_cfg(64, 256, depth=50), ShapeSpec(channels=3))
