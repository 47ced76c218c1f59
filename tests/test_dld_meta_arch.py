import math

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from dld.modeling import DLDTextSpotter, TextSpotterRCNN
from conftest import small_dld_cfg, two_word_batch


@pytest.fixture
def dld_cfg(small_cfg, tmp_path):
    cfg = small_dld_cfg(small_cfg)
    cfg.MODEL.DLD.SKD.TOPK = 2
    cfg.MODEL.DLD.SKD.BEAM_WIDTH = 2
    torch.manual_seed(0)
    teacher = TextSpotterRCNN(cfg)
    path = tmp_path / "teacher.pth"
    torch.save({"model": teacher.state_dict()}, path)
    cfg.MODEL.DLD.TEACHER.WEIGHTS = str(path)
    return cfg


def _model(cfg) -> DLDTextSpotter:
    torch.manual_seed(1)
    model = build_model(cfg)
    model.load_teacher(init_student=False)
    return model


def test_training_step_trains_student_and_selector_but_not_the_teacher(dld_cfg):
    model = _model(dld_cfg)
    model.train()
    assert not model.teacher.training and all(not p.requires_grad for p in model.teacher.parameters())
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    with EventStorage():
        for _ in range(2):
            losses = model(two_word_batch(dld_cfg))
            expected = {"loss_selector_accuracy", "loss_selector_cost", "loss_kd_roi", "loss_kd_context", "loss_kd_seq"}
            assert expected <= set(losses) and {"loss_rec", "loss_mask", "loss_rpn_cls"} <= set(losses)
            assert all(torch.isfinite(v) for v in losses.values())
            optimizer.zero_grad()
            sum(losses.values()).backward()
            assert model.selector.conv1.weight.grad.abs().sum() > 0  # the straight-through gradient
            assert model.student.roi_heads.text_head.decoder.generator.weight.grad.abs().sum() > 0
            assert all(p.grad is None for p in model.teacher.parameters())
            optimizer.step()
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k


def test_batch_without_legible_words_skips_distillation(dld_cfg):
    model = _model(dld_cfg)
    model.train()
    with EventStorage():
        losses = model(two_word_batch(dld_cfg, with_words=False))
    for name in ("loss_kd_roi", "loss_kd_context", "loss_kd_seq", "loss_selector_accuracy"):
        assert losses[name].item() == 0.0 and not math.isnan(losses[name].item())
    sum(losses.values()).backward()


def test_checkpoint_holds_student_and_selector_only(dld_cfg):
    keys = _model(dld_cfg).state_dict().keys()
    assert any(k.startswith("student.") for k in keys) and any(k.startswith("selector.") for k in keys)
    assert not any(k.startswith("teacher.") for k in keys)


def test_inference_is_repeatable_and_reports_the_scale(dld_cfg):
    model = _model(dld_cfg).eval()
    inputs = [{"image": x["image"], "height": 256, "width": 320} for x in two_word_batch(dld_cfg)]
    first, second = model(inputs), model(inputs)
    for a, b in zip(first, second):
        assert a["selected_scale"] in (0.8, 0.5) and a["selected_scale"] == b["selected_scale"]
        assert a["instances"].image_size == (256, 320)
        assert torch.equal(a["instances"].pred_boxes.tensor, b["instances"].pred_boxes.tensor)


def test_mismatched_teacher_checkpoint_names_the_keys(dld_cfg, tmp_path):
    model = _model(dld_cfg)
    state = {k: v for k, v in model.teacher.state_dict().items() if "text_head.decoder" not in k}
    state["roi_heads.box_predictor.cls_score.weight"] = torch.zeros(3, 5)
    bad = tmp_path / "bad.pth"
    torch.save({"model": state}, bad)
    model.teacher_weights = str(bad)
    with pytest.raises(ValueError, match="text_head.decoder") as err:
        model.load_teacher()
    assert "cls_score.weight" in str(err.value)
