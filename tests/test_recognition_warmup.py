"""Word crops (WordCropMapper, crop_word) and the recognition warm-up meta-architecture."""
import cv2
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import BoxMode

from dld.data import WordCropMapper, crop_word
from dld.modeling import TextRecognitionWarmup


def _record(tmp_path, words, size=(120, 200)):
    """An image with each word's polygon filled with its own grey level; returns its dataset dict."""
    image = np.zeros(size + (3,), dtype=np.uint8)
    annotations = []
    for k, (polygon, text) in enumerate(words):
        cv2.fillPoly(image, [np.round(polygon).astype(np.int32)], (60 + 40 * k,) * 3)
        annotations.append(
            {
                "bbox": [*polygon.min(0), *polygon.max(0)],
                "bbox_mode": BoxMode.XYXY_ABS,
                "segmentation": [polygon.reshape(-1).tolist()],
                "category_id": 0,
                "text": text,
                "iscrowd": int(text == "###"),
            }
        )
    path = tmp_path / "words.png"
    cv2.imwrite(str(path), image)
    return {"file_name": str(path), "height": size[0], "width": size[1], "image_id": 0, "annotations": annotations}


def _rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def test_a_small_word_keeps_its_native_size_and_stays_aligned():
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[40:52, 30:90] = 255  # the word: 60x12 pixels
    polygon = _rect(30, 40, 90, 52)
    crop, moved = crop_word(image, polygon, (32, 128), 4.0, np.random.default_rng(0))
    assert crop.shape == (32, 128, 3)
    size = moved.max(0) - moved.min(0)
    np.testing.assert_allclose(size, [60, 12], atol=1e-4)  # not rescaled
    x0, y0 = np.round(moved.min(0)).astype(int)
    assert (crop[y0 + 1 : y0 + 11, x0 + 1 : x0 + 59] == 255).all()  # the word's pixels are where its polygon is
    assert crop.astype(int).sum() <= 255 * 3 * 62 * 14  # and nothing white elsewhere


def test_a_large_word_is_scaled_down_to_fit_with_its_margin():
    image = np.zeros((300, 400, 3), dtype=np.uint8)
    polygon = _rect(20, 50, 380, 150)  # 360x100
    for seed in range(5):
        _, moved = crop_word(image, polygon, (32, 128), 4.0, np.random.default_rng(seed))
        assert moved.min() >= 0 and moved[:, 0].max() <= 128 and moved[:, 1].max() <= 32
        size = moved.max(0) - moved.min(0)
        assert size[0] / size[1] == pytest.approx(3.6, rel=1e-4)  # aspect kept
        assert size[1] == pytest.approx(32 * 100 / 108, rel=1e-4)  # height fills the canvas with the margins


def test_a_word_taller_than_wide_is_not_cropped():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    assert crop_word(image, _rect(40, 10, 50, 90), (32, 128), 4.0, np.random.default_rng(0)) is None


def test_mapper_cuts_the_readable_words_only(tmp_path, small_cfg):
    cfg = small_cfg.clone()
    cfg.INPUT.COLOR_JITTER = False
    words = [
        (_rect(10, 10, 70, 25), "alpha"),
        (_rect(10, 40, 90, 60), "###"),  # don't care
        (_rect(10, 70, 120, 90), "b\u00e9ta"),  # unencodable
        (_rect(150, 10, 160, 100), "tall"),  # taller than wide
        (_rect(100, 95, 180, 115), "gamma"),
    ]
    out = WordCropMapper(cfg)(_record(tmp_path, words))
    assert out["crops"].shape == (2, 3, 32, 128) and out["crops"].dtype == torch.uint8
    decoder = WordCropMapper.from_config(cfg)["charset_encoder"]
    assert decoder.decode_batch(out["crop_texts"]) == ["alpha", "gamma"]
    for crop, polygon, level in zip(out["crops"], out["crop_polygons"], (60, 220)):
        cx, cy = polygon.mean(0).round().astype(int)
        assert int(crop[0, cy, cx]) == level  # each crop holds its own word


def test_mapper_with_no_readable_word_gives_an_empty_batch(tmp_path, small_cfg):
    out = WordCropMapper(small_cfg)(_record(tmp_path, [(_rect(10, 10, 70, 25), "###")]))
    assert out["crops"].shape == (0, 3, 32, 128)
    assert out["crop_polygons"] == [] and len(out["crop_texts"]) == 0


def _warmup_model(small_cfg):
    cfg = small_cfg.clone()
    cfg.MODEL.META_ARCHITECTURE = "TextRecognitionWarmup"
    cfg.INPUT.WORD_CROP.ENABLED = True
    cfg.INPUT.COLOR_JITTER = False
    torch.manual_seed(0)
    return cfg, build_model(cfg)


def test_warmup_trains_backbone_and_recognizer_only(tmp_path, small_cfg, single_thread):
    cfg, model = _warmup_model(small_cfg)
    assert isinstance(model, TextRecognitionWarmup)
    record = _record(tmp_path, [(_rect(10, 10, 70, 25), "alpha"), (_rect(100, 95, 180, 115), "gamma")])
    torch.manual_seed(0)
    losses = model([WordCropMapper(cfg)(record)])
    assert set(losses) == {"loss_rec", "loss_rec_ctc"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert model.backbone.bottom_up.stem.conv1.weight.grad.abs().sum() > 0
    assert model.roi_heads.text_head.decoder.generator.weight.grad.abs().sum() > 0
    assert model.roi_heads.box_predictor.cls_score.weight.grad is None
    assert model.proposal_generator.rpn_head.conv.weight.grad is None


def test_warmup_with_no_crop_gives_a_zero_loss_connected_to_the_recognizer(tmp_path, small_cfg, single_thread):
    cfg, model = _warmup_model(small_cfg)
    out = WordCropMapper(cfg)(_record(tmp_path, [(_rect(10, 10, 70, 25), "###")]))
    losses = model([out])
    assert losses["loss_rec"].item() == 0.0
    losses["loss_rec"].backward()
    assert model.roi_heads.text_head.decoder.generator.weight.grad is not None


def test_warmup_rejects_whole_images_in_training(small_cfg, single_thread):
    _, model = _warmup_model(small_cfg)
    with pytest.raises(ValueError, match="INPUT.WORD_CROP.ENABLED"):
        model([{"image": torch.zeros(3, 64, 64, dtype=torch.uint8)}])


def test_warmup_checkpoint_loads_into_the_spotter_with_every_key(small_cfg, single_thread):
    _, warmup = _warmup_model(small_cfg)
    spotter = build_model(small_cfg)
    result = spotter.load_state_dict(warmup.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_fill_scales_a_small_word_up_to_the_canvas():
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    _, moved = crop_word(image, _rect(30, 40, 90, 52), (32, 128), 4.0, np.random.default_rng(0), fill=True)
    size = moved.max(0) - moved.min(0)
    assert size[0] / size[1] == pytest.approx(5.0, rel=1e-4)
    # 60x12 plus a margin of 4 is 68x20: the height binds (32/20 < 128/68).
    assert size[1] == pytest.approx(12 * 32 / 20, rel=1e-4)
