import cv2
import numpy as np
import pytest
import torch
from detectron2.structures import BoxMode

from dld.data.mapper import TextDatasetMapper


def _write_image_with_word(tmp_path, polygon, size=(200, 300)):
    """A black image with the polygon filled white; returns its dataset dict."""
    image = np.zeros((size[0], size[1], 3), dtype=np.uint8)
    cv2.fillPoly(image, [np.round(polygon).astype(np.int32)], (255, 255, 255))
    path = tmp_path / "word.png"
    cv2.imwrite(str(path), image)
    xs, ys = polygon[:, 0], polygon[:, 1]
    return {
        "file_name": str(path),
        "height": size[0],
        "width": size[1],
        "image_id": 0,
        "annotations": [
            {
                "bbox": [xs.min(), ys.min(), xs.max(), ys.max()],
                "bbox_mode": BoxMode.XYXY_ABS,
                "segmentation": [polygon.reshape(-1).tolist()],
                "category_id": 0,
                "text": "word",
                "iscrowd": 0,
            },
            {
                "bbox": [0, 0, 10, 10],
                "bbox_mode": BoxMode.XYXY_ABS,
                "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]],
                "category_id": 0,
                "text": "###",
                "iscrowd": 1,
            },
        ],
    }


def _mapper(small_cfg, is_train=True, rotation=False, min_size=400):
    cfg = small_cfg.clone()
    cfg.INPUT.MIN_SIZE_TRAIN = (min_size,)
    cfg.INPUT.MAX_SIZE_TRAIN = 2000
    cfg.INPUT.MIN_SIZE_TEST = min_size
    cfg.INPUT.MAX_SIZE_TEST = 2000
    cfg.INPUT.COLOR_JITTER = False
    cfg.INPUT.ROTATION_ANGLES = (30, 30) if rotation else (0, 0)
    cfg.INPUT.ROTATION_PROB = 1.0 if rotation else 0.0
    return TextDatasetMapper(cfg, is_train=is_train)


@pytest.mark.parametrize("rotation", [False, True])
def test_polygons_stay_aligned_with_the_resized_image(tmp_path, small_cfg, rotation):
    polygon = np.array([[60, 50], [220, 70], [210, 120], [50, 100]], dtype=np.float32)
    record = _write_image_with_word(tmp_path, polygon)
    out = _mapper(small_cfg, rotation=rotation)(record)
    image = out["image"].numpy().transpose(1, 2, 0)
    inst = out["instances"]
    assert out["image"].shape[1] == 400 or rotation  # short side resized 200 -> 400
    assert len(inst) == 1  # the don't-care word is not a target
    mask = inst.gt_masks.polygons[0][0].reshape(-1, 2)
    rendered = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(rendered, [np.round(mask).astype(np.int32)], 1)
    white = image[..., 0] > 127
    iou = (white & (rendered > 0)).sum() / (white | (rendered > 0)).sum()
    assert iou > 0.95, iou
    x0, y0, x1, y1 = inst.gt_boxes.tensor[0].tolist()
    ys, xs = np.nonzero(white)
    assert abs(x0 - xs.min()) <= 3 and abs(x1 - xs.max()) <= 3 and abs(y0 - ys.min()) <= 3 and abs(y1 - ys.max()) <= 3
    assert inst.gt_texts.shape == (1, small_cfg.MODEL.TEXT_HEAD.MAX_LENGTH + 1)


def test_unencodable_word_stays_a_detection_target(tmp_path, small_cfg):
    polygon = np.array([[60, 50], [220, 50], [220, 100], [60, 100]], dtype=np.float32)
    record = _write_image_with_word(tmp_path, polygon)
    record["annotations"][0]["text"] = "x" * 100
    inst = _mapper(small_cfg)(record)["instances"]
    assert len(inst) == 1 and inst.gt_texts.eq(0).all()


def test_test_mode_drops_annotations_and_resizes(tmp_path, small_cfg):
    polygon = np.array([[60, 50], [220, 50], [220, 100], [60, 100]], dtype=np.float32)
    out = _mapper(small_cfg, is_train=False, min_size=100)(_write_image_with_word(tmp_path, polygon))
    assert out["image"].shape == (3, 100, 150) and "instances" not in out and "annotations" not in out


def test_image_without_words(tmp_path, small_cfg):
    polygon = np.array([[60, 50], [220, 50], [220, 100], [60, 100]], dtype=np.float32)
    record = _write_image_with_word(tmp_path, polygon)
    record["annotations"] = []
    inst = _mapper(small_cfg)(record)["instances"]
    assert len(inst) == 0 and inst.gt_texts.shape[0] == 0


def test_unreadable_image_names_the_file(tmp_path, small_cfg):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    record = {"file_name": str(bad), "height": 10, "width": 10, "image_id": 1, "annotations": []}
    with pytest.raises(OSError, match="broken.jpg"):
        _mapper(small_cfg)(record)


def test_text_preserving_crop_never_cuts_a_word():
    from dld.data.augmentation import TextPreservingCrop

    np.random.seed(0)
    boxes = np.array([[10, 10, 60, 30], [100, 100, 180, 130], [20, 150, 90, 190]], dtype=np.float32)
    aug = TextPreservingCrop(0.4)
    image = np.zeros((200, 200, 3), np.uint8)
    cropped = 0
    for _ in range(50):
        t = aug.get_transform(image, boxes)
        if hasattr(t, "x0"):
            cropped += 1
            inside = (boxes[:, 0] >= t.x0) & (boxes[:, 2] <= t.x0 + t.w) & (boxes[:, 1] >= t.y0) & (boxes[:, 3] <= t.y0 + t.h)
            outside = (boxes[:, 2] <= t.x0) | (boxes[:, 0] >= t.x0 + t.w) | (boxes[:, 3] <= t.y0) | (boxes[:, 1] >= t.y0 + t.h)
            assert inside.any() and np.all(inside | outside)
    assert cropped > 10
