"""A NaN loss or gradient stops training, naming the iteration and the culprit; the last good checkpoint stays."""
import logging

import pytest
import torch
from detectron2.utils.events import get_event_storage

from reliability_support import generate_tiny_synth, load_train_net, tiny_cfg

BAD_ITERATION = 3


@pytest.fixture
def make_trainer(tmp_path, monkeypatch, single_thread):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(generate_tiny_synth(tmp_path / "datasets", 4, 1)))
    out = tmp_path / "out"

    def make(checkpoint_period: int):
        cfg = tiny_cfg(["OUTPUT_DIR", str(out), "SOLVER.MAX_ITER", "8", "SOLVER.CHECKPOINT_PERIOD",
                        str(checkpoint_period), "INPUT.ROTATION_PROB", "0.0"])
        trainer = load_train_net().Trainer(cfg)
        trainer.resume_or_load(resume=False)
        return trainer, out

    return make


def _at_bad_iteration() -> bool:
    return get_event_storage().iter == BAD_ITERATION


def _assert_stopped_cleanly(trainer, out):
    assert trainer.iter == BAD_ITERATION
    # The bad step never reached the optimizer: the weights in memory are finite ...
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    # ... and nothing was saved after it: the last checkpoint is the good one of iteration 1.
    assert sorted(p.name for p in out.glob("*.pth")) == ["model_0000001.pth"]
    assert (out / "last_checkpoint").read_text() == "model_0000001.pth"
    checkpoint = torch.load(out / "model_0000001.pth", map_location="cpu", weights_only=False)
    assert checkpoint["trainer"]["iteration"] == 1
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.dtype.is_floating_point)


def test_nan_loss_term_stops_training_naming_iteration_and_term(make_trainer, caplog):
    trainer, out = make_trainer(checkpoint_period=2)

    def poison_recognition_loss(module, inputs, output):
        proposals, losses = output
        if module.training and _at_bad_iteration():
            losses = dict(losses, loss_rec=losses["loss_rec"] * float("nan"))
        return proposals, losses

    trainer.model.roi_heads.register_forward_hook(poison_recognition_loss)
    with caplog.at_level(logging.ERROR, logger="dld"), pytest.raises(FloatingPointError) as e:
        trainer.train()
    assert str(e.value).startswith(f"Non-finite loss at iteration {BAD_ITERATION}: loss_rec = nan (all terms: ")
    assert "loss_cls=" in str(e.value)  # the finite terms are listed too
    assert f"model_0000001.pth was written before it and is intact" in caplog.text
    _assert_stopped_cleanly(trainer, out)


def test_nan_gradient_with_finite_losses_stops_before_it_reaches_the_weights(make_trainer):
    # A checkpoint falls due right after the bad step: without the gradient check it would hold NaN weights.
    trainer, out = make_trainer(checkpoint_period=2)
    name = "roi_heads.box_predictor.cls_score.weight"
    parameter = dict(trainer.model.named_parameters())[name]
    parameter.register_hook(lambda grad: grad * float("nan") if _at_bad_iteration() else grad)
    with pytest.raises(FloatingPointError) as e:
        trainer.train()
    message = str(e.value)
    assert message.startswith(f"Non-finite gradient at iteration {BAD_ITERATION} in {name}, although every loss")
    _assert_stopped_cleanly(trainer, out)
