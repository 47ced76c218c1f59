import numpy as np
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances, PolygonMasks
from detectron2.utils.events import EventStorage

from dld.modeling.postprocessing import mask_to_polygon
from dld.data import build_charset_encoder


def _inputs(cfg, with_words=True):
    enc = build_charset_encoder(cfg)
    inst = Instances((128, 160))
    if with_words:
        polys = [[10, 10, 90, 10, 90, 30, 10, 30], [20, 60, 140, 60, 140, 100, 20, 100]]
        inst.gt_boxes = Boxes(torch.tensor([[10.0, 10, 90, 30], [20, 60, 140, 100]]))
        inst.gt_masks = PolygonMasks([[np.array(p, dtype=np.float64)] for p in polys])
        inst.gt_texts = enc.encode_batch(["hello", "x" * 50])
    else:
        inst.gt_boxes = Boxes(torch.zeros((0, 4)))
        inst.gt_masks = PolygonMasks([])
        inst.gt_texts = enc.encode_batch([])
    inst.gt_classes = torch.zeros(len(inst), dtype=torch.long)
    return {"image": torch.rand(3, 128, 160) * 255, "instances": inst, "height": 256, "width": 320}


def test_train_step_with_words_and_without(small_cfg):
    torch.manual_seed(0)
    model = build_model(small_cfg)
    model.train()
    with EventStorage():
        losses = model([_inputs(small_cfg), _inputs(small_cfg, with_words=False)])
        assert {"loss_rec", "loss_mask", "loss_cls", "loss_rpn_cls"} <= set(losses)
        assert all(torch.isfinite(v) for v in losses.values())
        sum(losses.values()).backward()
        assert model.roi_heads.text_head.decoder.generator.weight.grad.abs().sum() > 0
        # a batch with no word at all trains without error, the recognition loss is a zero with a graph
        losses = model([_inputs(small_cfg, with_words=False)])
        assert losses["loss_rec"].item() == 0.0
        sum(losses.values()).backward()


def test_inference_outputs_words_in_original_coordinates(small_cfg):
    torch.manual_seed(0)
    cfg = small_cfg.clone()
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0  # an untrained model: keep every detection
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model([{"image": torch.rand(3, 128, 160) * 255, "height": 256, "width": 320}])[0]["instances"]
    assert out.image_size == (256, 320)
    assert len(out) > 0
    for field in ("pred_boxes", "scores", "pred_polygons", "pred_texts", "text_scores", "pred_text_ids"):
        assert out.has(field), field
    assert len(out.pred_polygons) == len(out.pred_texts) == len(out)
    for poly, box in zip(out.pred_polygons, out.pred_boxes.tensor.numpy()):
        assert poly.shape[1] == 2 and len(poly) >= 3
        assert poly[:, 0].min() >= box[0] - 1 and poly[:, 0].max() <= box[2] + 1
    assert ((out.text_scores >= 0) & (out.text_scores <= 1)).all()


def test_mask_to_polygon_maps_box_relative_masks_to_image_coordinates():
    mask = np.zeros((28, 28), np.float32)
    mask[7:21, :] = 1.0  # the middle half (vertically) of the box
    poly = mask_to_polygon(mask, np.array([100.0, 50.0, 300.0, 90.0]))
    assert abs(poly[:, 0].min() - 100) < 2 and abs(poly[:, 0].max() - 300) < 2
    assert abs(poly[:, 1].min() - 60) < 2 and abs(poly[:, 1].max() - 80) < 2
    assert len(mask_to_polygon(np.zeros((28, 28), np.float32), np.array([0.0, 0, 10, 10]))) == 0


def test_jittered_copies_multiply_recognition_samples(small_cfg):
    torch.manual_seed(0)
    cfg = small_cfg.clone()
    cfg.MODEL.TEXT_HEAD.TRAIN_JITTER_COPIES = 2
    cfg.MODEL.TEXT_HEAD.TRAIN_JITTER_RATIO = 0.1
    model = build_model(cfg)
    target = _inputs(cfg)["instances"]  # two words, the second cannot be encoded
    boxes, masks, texts = model.roi_heads.recognition_inputs([target], jitter_copies=2)
    gt = target.gt_boxes.tensor[:1]
    assert boxes[0].shape == (3, 4) and masks[0].shape == (3, 28, 28) and texts.shape[0] == 3
    assert torch.equal(boxes[0][0], gt[0]) and torch.equal(texts[1], texts[0]) and torch.equal(texts[2], texts[0])
    size = (gt[0, 2:] - gt[0, :2]).repeat(2)
    moved = (boxes[0][1:] - gt).abs()
    assert (moved > 0).any() and (moved <= 0.1 * size + 1e-4).all()
    no_copies, _, _ = model.roi_heads.recognition_inputs([target])
    assert no_copies[0].shape == (1, 4)
