"""The predictor and the one model loader behind it (dld.engine.predictor): plain spotter and DLD student."""
import json

import numpy as np
import pytest
import torch

from dld.engine import TextSpotterPredictor, build_model_from_config, load_config
from dld.modeling import DLDTextSpotter
from reliability_support import CONFIG, TINY, TINY_DLD, tiny_cfg

pytestmark = pytest.mark.usefixtures("single_thread")

# Random weights propose junk with low scores: keep every detection, so that there are words to compare.
ALL_WORDS = ["MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "MODEL.DEVICE", "cpu"]


def _image(height: int = 100, width: int = 140, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, size=(height, width, 3), dtype=np.uint8)


def _saved(cfg, path) -> str:
    torch.manual_seed(0)
    model = build_model_from_config(cfg, "")
    torch.save({"model": model.state_dict()}, path)
    return str(path)


def test_predictor_loads_the_weights_and_returns_words_and_cost(tmp_path):
    cfg = tiny_cfg(ALL_WORDS)
    weights = _saved(cfg, tmp_path / "spotter.pth")
    torch.manual_seed(1)  # another initialisation: only the checkpoint can make the two models equal
    predictor = TextSpotterPredictor(cfg, weights)
    expected = torch.load(weights, weights_only=False)["model"]
    for key, value in predictor.model.state_dict().items():
        torch.testing.assert_close(value, expected[key], msg=key)

    image = _image()
    result = predictor(image)
    assert len(result.words) > 0
    word = result.words[0]
    assert word.polygon.shape[1] == 2 and len(word.box) == 4 and isinstance(word.text, str)
    assert 0 <= word.score <= 1 and 0 <= word.text_score <= 1
    # Words in the coordinates of the image given (100 x 140), not of the resized network input.
    assert max(w.box[2] for w in result.words) <= 140 + 1e-3 and max(w.box[3] for w in result.words) <= 100 + 1e-3
    assert result.selected_scale == 1.0 and result.gflops > 0 and result.seconds > 0

    batch = predictor([image, _image(80, 120, seed=1)])
    assert len(batch) == 2
    assert [w.text for w in batch[0].words] == [w.text for w in result.words]
    np.testing.assert_allclose([w.box for w in batch[0].words], [w.box for w in result.words], atol=1e-3)


def _numbers(value):
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, float) else []


def test_to_dict_is_json_with_rounded_numbers(tmp_path):
    cfg = tiny_cfg(ALL_WORDS)
    result = TextSpotterPredictor(cfg, _saved(cfg, tmp_path / "spotter.pth"))(_image())
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) == {"selected_scale", "gflops", "seconds", "words"}
    numbers = _numbers(data)
    assert len(numbers) > 10
    # No float32 noise such as 1992.5999755859375: every number has at most 4 decimals.
    assert all(round(n, 4) == n for n in numbers)


def test_dld_student_loads_without_teacher_weights(tmp_path):
    cfg = tiny_cfg(ALL_WORDS + TINY_DLD)
    assert cfg.MODEL.DLD.TEACHER.WEIGHTS == ""
    weights = _saved(cfg, tmp_path / "dld.pth")
    saved = torch.load(weights, weights_only=False)["model"]
    assert not any(k.startswith("teacher.") for k in saved)  # a DLD checkpoint holds student and selector
    torch.manual_seed(1)
    predictor = TextSpotterPredictor(cfg, weights)
    assert isinstance(predictor.model, DLDTextSpotter) and not predictor.model.training
    for key, value in predictor.model.student.state_dict().items():
        torch.testing.assert_close(value, saved["student." + key], msg=key)
    result = predictor(_image())
    assert result.selected_scale in (0.8, 0.5) and result.gflops > 0


def test_missing_checkpoint_or_config_is_reported_before_building(tmp_path, monkeypatch):
    import dld.engine.predictor as predictor_module

    def fail(cfg):
        raise AssertionError("the model was built before the checkpoint was checked")

    monkeypatch.setattr(predictor_module, "build_model", fail)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_model_from_config(tiny_cfg(ALL_WORDS), str(tmp_path / "nope.pth"))
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(str(tmp_path / "nope.yaml"))


def test_load_config_merges_the_file_then_the_overrides():
    cfg = load_config(CONFIG, TINY)
    assert cfg.MODEL.FPN.OUT_CHANNELS == 32 and cfg.MODEL.META_ARCHITECTURE == "TextSpotterRCNN"
