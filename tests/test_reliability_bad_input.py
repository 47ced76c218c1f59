"""
Bad input across the pipeline: each one gets a message naming the file and what is wrong, or (when the config
says "skip") a counted, logged skip that keeps every good annotation.
"""
import logging
import struct
import uuid
import zlib

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode
from detectron2.structures.masks import polygons_to_bitmask

from reliability_support import load_train_net, tiny_cfg

from dld.data import BadAnnotationError, TextDatasetMapper, check_dataset_dicts, get_checked_dataset_dicts
from dld.data.builtin import _usable_quads, load_text_dataset
from dld.data.formats import AnnotationFormatError

GOOD = [20, 10, 80, 10, 80, 30, 20, 30]
# Bad words: (segmentation or annotation change, what the message says).
BAD_WORDS = {
    "two points": ({"segmentation": [[10, 10, 50, 10]]}, "2 point(s); a polygon needs at least 3"),
    "odd coordinates": ({"segmentation": [[10, 10, 50, 10, 50, 30, 10]]}, "odd number of coordinates (7)"),
    "nan": ({"segmentation": [[10, 10, float("nan"), 10, 50, 30, 10, 30]]}, "non-finite coordinate (nan)"),
    "inf": ({"segmentation": [[10, 10, float("inf"), 10, 50, 30, 10, 30]]}, "non-finite coordinate (inf)"),
    "outside": ({"segmentation": [[300, 300, 400, 300, 400, 350, 300, 350]]}, "entirely outside the 160x96 image"),
    "flat": ({"segmentation": [[10, 10, 20, 20, 30, 30, 40, 40]]}, "zero area"),
    "rle": ({"segmentation": {"size": [96, 160], "counts": "abc"}}, "RLE mask"),
    "flat list": ({"segmentation": [10, 10, 50, 10, 50, 30]}, "list of polygons"),
    "array": ({"segmentation": np.array([GOOD], dtype=float)}, "not an array"),
    "text not a string": ({"text": None}, "transcription None is not a string"),
    "no geometry": ({"segmentation": [], "bbox": None}, "neither a segmentation nor a bbox"),
}


def _word(segmentation=GOOD, text="good", iscrowd=0, **extra):
    xs, ys = segmentation[0::2], segmentation[1::2]
    word = {"bbox": [min(xs), min(ys), max(xs), max(ys)], "bbox_mode": BoxMode.XYXY_ABS,
            "segmentation": [segmentation], "category_id": 0, "text": text, "iscrowd": iscrowd}
    word.update(extra)
    return word


def _bad_word(kind):
    change, _ = BAD_WORDS[kind]
    word = _word()
    word.update(change)
    if word.get("bbox") is None:
        del word["bbox"]
    return word


def _image(path, size=(96, 160)):
    image = np.full((*size, 3), 200, np.uint8)
    cv2.imwrite(str(path), image)
    return str(path)


def _record(file_name, annotations, size=(96, 160), image_id=0):
    return {"file_name": file_name, "height": size[0], "width": size[1], "image_id": image_id,
            "annotations": annotations}


def _mapper(is_train=True, on_bad_image="error", on_bad_annotation="error"):
    cfg = tiny_cfg(["DATALOADER.ON_BAD_IMAGE", on_bad_image, "DATASETS.ON_BAD_ANNOTATION", on_bad_annotation,
                    "INPUT.ROTATION_PROB", "0.0", "INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MAX_SIZE_TRAIN", "1000",
                    "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "1000"])
    return TextDatasetMapper(cfg, is_train=is_train)


# ---------------------------------------------------------------------------------------------- images
def _png_header_only(path, width, height):
    """A PNG that declares width x height (8-bit RGB) and holds no pixel data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return str(path)


def _bad_image(tmp_path, kind):
    if kind == "corrupt":
        path = tmp_path / "corrupt.jpg"
        path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    elif kind == "truncated":
        good = cv2.imencode(".jpg", np.random.RandomState(0).randint(0, 255, (96, 160, 3), np.uint8))[1].tobytes()
        path = tmp_path / "truncated.jpg"
        path.write_bytes(good[: len(good) // 2])
    elif kind == "empty file":
        path = tmp_path / "empty.png"
        path.write_bytes(b"")
    elif kind == "decompression bomb":
        return _png_header_only(tmp_path / "huge.png", 40000, 40000), "DecompressionBomb"
    else:
        raise KeyError(kind)
    return str(path), "Cannot read image"


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "empty file", "decompression bomb"])
def test_unreadable_image_is_named_or_skipped_in_training(tmp_path, caplog, kind):
    path, reason = _bad_image(tmp_path, kind)
    record = _record(path, [_word()])
    with pytest.raises(OSError) as e:
        _mapper()(record)
    assert path in str(e.value) and reason in str(e.value)

    mapper = _mapper(on_bad_image="skip")
    with caplog.at_level(logging.WARNING, logger="dld.data.mapper"):
        assert mapper(record) is None and mapper(record) is None
    assert mapper.num_bad_images == 2 and f"(2 so far in this process): Cannot read image {path}" in caplog.text
    # Evaluation never skips: a replaced image would change the metrics.
    with pytest.raises(OSError, match="Cannot read image"):
        _mapper(is_train=False, on_bad_image="skip")(record)


def test_image_of_another_size_than_its_record(tmp_path):
    record = _record(_image(tmp_path / "a.png", (96, 160)), [_word()], size=(100, 160))
    with pytest.raises(ValueError, match=r"a\.png"):
        _mapper()(record)
    assert _mapper(on_bad_image="skip")(record) is None


def test_large_image_is_capped_with_a_log_line(tmp_path, caplog):
    path = _image(tmp_path / "large.png", (3000, 4000))
    cfg = tiny_cfg(["INPUT.MIN_SIZE_TEST", "1000", "INPUT.MAX_SIZE_TEST", "384"])
    with caplog.at_level(logging.INFO, logger="dld.data.mapper"):
        out = TextDatasetMapper(cfg, is_train=False)(_record(path, [], size=(3000, 4000)))
    assert tuple(out["image"].shape) == (3, 288, 384)
    assert f"Image {path} of 4000x3000 is capped to 384x288 by INPUT.MAX_SIZE_TEST=384" in caplog.text


# ---------------------------------------------------------------------------------------------- words
@pytest.mark.parametrize("kind", sorted(BAD_WORDS))
def test_bad_word_in_the_mapper_is_named_or_skipped(tmp_path, caplog, kind):
    path = _image(tmp_path / "img.png")
    record = _record(path, [_word(), _bad_word(kind), _word([100, 40, 150, 40, 150, 70, 100, 70], "second")])
    with pytest.raises(BadAnnotationError) as e:
        _mapper()(record)
    assert str(e.value).startswith(f"{path}, annotation 1: ") and BAD_WORDS[kind][1] in str(e.value)

    mapper = _mapper(on_bad_annotation="skip")
    with caplog.at_level(logging.WARNING, logger="dld.data.mapper"):
        instances = mapper(record)["instances"]
    assert mapper.num_bad_words == 1 and BAD_WORDS[kind][1] in caplog.text
    assert len(instances) == 2  # both good words are kept
    assert torch.isfinite(instances.gt_boxes.tensor).all()


@pytest.mark.parametrize("kind", sorted(BAD_WORDS))
def test_bad_word_in_a_dataset_is_named_or_counted(tmp_path, caplog, kind):
    dataset = [_record("a.jpg", [_word()], image_id=1),
               _record("b.jpg", [_word(), _bad_word(kind), _word(source="gt_b.txt, line 3")], image_id=2)]
    with pytest.raises(BadAnnotationError) as e:
        check_dataset_dicts(dataset, "mine", "error")
    assert "Dataset 'mine': b.jpg, annotation 1: " in str(e.value) and BAD_WORDS[kind][1] in str(e.value)
    with caplog.at_level(logging.WARNING, logger="dld.data.checks"):
        checked = check_dataset_dicts(dataset, "mine", "skip")
    assert [len(d["annotations"]) for d in checked] == [1, 2]
    assert checked[1]["annotations"][1]["source"] == "gt_b.txt, line 3"
    assert len(dataset[1]["annotations"]) == 3  # the input is not modified
    assert "skipped bad annotations: 1 (" in caplog.text and "b.jpg, annotation 1" in caplog.text


def test_the_line_of_a_raw_word_is_named(tmp_path):
    images, gts = tmp_path / "images", tmp_path / "gts"
    images.mkdir()
    gts.mkdir()
    _image(images / "img_1.jpg")
    (gts / "gt_img_1.txt").write_text("1,1,20,1,20,10,1,10,ok\n500,1,600,1,600,10,500,10,far\n", encoding="utf-8")
    dataset = load_text_dataset([str(images)], str(gts), "icdar2015")  # kept: evaluation counts it as missed
    assert len(dataset[0]["annotations"]) == 2
    with pytest.raises(BadAnnotationError, match=rf"annotation 1 \({gts / 'gt_img_1.txt'}, line 2\): .*outside"):
        check_dataset_dicts(dataset, "raw", "error")


def test_self_intersecting_polygon_is_kept_and_counted(tmp_path, caplog):
    bowtie = [20, 10, 80, 30, 80, 10, 20, 30]
    dataset = [_record("a.jpg", [_word(), _word(bowtie)])]
    with caplog.at_level(logging.WARNING, logger="dld.data.checks"):
        for mode in ("error", "skip"):
            assert len(check_dataset_dicts(dataset, "bows", mode)[0]["annotations"]) == 2
    assert "1 self-intersecting polygon(s) kept" in caplog.text
    instances = _mapper()(_record(_image(tmp_path / "b.png"), [_word(bowtie)]))["instances"]
    mask = polygons_to_bitmask(instances.gt_masks.polygons[0], 96, 160)
    assert len(instances) == 1 and mask.sum() == 600  # the mask target keeps both lobes of the bow tie


@pytest.mark.parametrize("height, width", [(0, 160), (96, 0), (None, 160), (96.5, 160), (float("nan"), 160)])
def test_record_without_a_usable_size(height, width):
    dataset = [_record("a.jpg", [_word()]), {**_record("zero.jpg", [_word()]), "height": height, "width": width}]
    with pytest.raises(BadAnnotationError, match="zero.jpg: image (height|width) is"):
        check_dataset_dicts(dataset, "sizes", "error")
    assert [d["file_name"] for d in check_dataset_dicts(dataset, "sizes", "skip")] == ["a.jpg"]


def test_synthtext_drops_degenerate_boxes_only():
    quad = np.array([[10, 10], [50, 10], [50, 30], [10, 30]], float)
    boxes = np.stack([quad, quad * 0 + 5, quad + 1000, np.where(quad == 50, np.nan, quad), quad - 20])
    usable = _usable_quads(boxes, np.full(5, 100.0), np.full(5, 100.0))
    assert usable.tolist() == [True, False, False, False, True]  # the last one is partly inside


# ---------------------------------------------------------------------------------------------- datasets
@pytest.fixture
def registered():
    names = []

    def register(records):
        name = f"_reliability_{uuid.uuid4().hex}"
        DatasetCatalog.register(name, lambda: records)
        MetadataCatalog.get(name).set(thing_classes=["text"], evaluator_type="text")
        names.append(name)
        return name

    yield register
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_empty_dataset_is_a_clear_error(registered):
    name = registered([])
    for mode in ("error", "skip"):
        with pytest.raises(BadAnnotationError, match=f"Dataset '{name}' is empty: it has no images"):
            get_checked_dataset_dicts([name], mode)


def test_nothing_left_to_train_on_is_a_clear_error(registered):
    name = registered([_record("a.jpg", [_bad_word("nan")]), _record("b.jpg", [_word(iscrowd=1)], image_id=1)])
    with pytest.raises(BadAnnotationError, match="has a word to train on"):
        get_checked_dataset_dicts([name], "skip")


def _ic15_layout(root):
    images = root / "icdar2015/ch4_training_images"
    gts = root / "icdar2015/ch4_training_localization_transcription_gt"
    images.mkdir(parents=True)
    gts.mkdir(parents=True)
    for i in (1, 2, 3):
        _image(images / f"img_{i}.jpg")
    (gts / "gt_img_1.txt").write_text("1,1,20,1,20,10,1,10,one\n1,1,x,1,20,10,1,10,bad\n", encoding="utf-8")
    (gts / "gt_img_2.txt").write_bytes("30,5,90,5,90,40,30,40,caf\u00e9\n".encode("latin-1"))  # not UTF-8
    (gts / "gt_img_3.txt").write_text("1,1,20,1,20,10,1,10,three\n", encoding="utf-8")
    (images / "img_4.jpg").write_bytes(b"not an image")
    (gts / "gt_img_4.txt").write_text("1,1,20,1,20,10,1,10,four\n", encoding="utf-8")
    return gts


def test_raw_split_strict_names_the_file_lenient_skips_and_counts(tmp_path, monkeypatch, caplog):
    gts = _ic15_layout(tmp_path / "datasets")
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "datasets"))
    with pytest.raises(AnnotationFormatError, match=rf"{gts / 'gt_img_1.txt'}, line 2: coordinate 'x'"):
        get_checked_dataset_dicts(["ic15_train"], "error")
    (gts / "gt_img_1.txt").write_text("1,1,20,1,20,10,1,10,one\n", encoding="utf-8")
    with pytest.raises(AnnotationFormatError, match=rf"{gts / 'gt_img_2.txt'}: not valid UTF-8"):
        get_checked_dataset_dicts(["ic15_train"], "error")

    (gts / "gt_img_1.txt").write_text("1,1,20,1,20,10,1,10,one\n1,1,x,1,20,10,1,10,bad\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="dld.data.builtin"):
        dicts = get_checked_dataset_dicts(["ic15_train"], "skip")
    assert [(d["image_id"], [a["text"] for a in d["annotations"]]) for d in dicts] == [(1, ["one"]), (3, ["three"])]
    assert "skipped 1 malformed annotation(s), 0 unpaired file(s) and 2 unreadable image(s)" in caplog.text
    assert "gt_img_2.txt: not valid UTF-8" in caplog.text and "img_4.jpg: UnidentifiedImageError" in caplog.text


def test_raw_split_with_an_unreadable_image_strict(tmp_path):
    gts = _ic15_layout(tmp_path)
    (gts / "gt_img_2.txt").write_text("1,1,20,1,20,10,1,10,two\n", encoding="utf-8")
    (gts / "gt_img_1.txt").write_text("1,1,20,1,20,10,1,10,one\n", encoding="utf-8")
    with pytest.raises(OSError, match=r"Cannot read image .*img_4\.jpg: UnidentifiedImageError"):
        load_text_dataset([str(tmp_path / "icdar2015/ch4_training_images")], str(gts), "icdar2015")


def test_train_loader_skips_bad_images_and_words_and_keeps_the_good_ones(tmp_path, registered):
    good = _image(tmp_path / "good.png")
    corrupt, _ = _bad_image(tmp_path, "truncated")
    name = registered([
        _record(good, [_word(), _bad_word("nan")], image_id=1),
        _record(corrupt, [_word()], image_id=2),
        _record(good, [_word([100, 40, 150, 40, 150, 70, 100, 70], "second")], image_id=3),
    ])
    trainer = load_train_net().Trainer
    cfg = tiny_cfg(["DATASETS.TRAIN", f"('{name}',)", "INPUT.ROTATION_PROB", "0.0"])
    with pytest.raises(BadAnnotationError, match=rf"{good}, annotation 1: polygon has a non-finite coordinate"):
        trainer.build_train_loader(cfg)
    cfg.merge_from_list(["DATASETS.ON_BAD_ANNOTATION", "skip"])
    with pytest.raises(OSError, match="truncated.jpg"):
        for _ in zip(range(3), trainer.build_train_loader(cfg)):
            pass
    cfg.merge_from_list(["DATALOADER.ON_BAD_IMAGE", "skip"])
    seen = [d for _, batch in zip(range(4), trainer.build_train_loader(cfg)) for d in batch]
    assert {d["image_id"] for d in seen} == {1, 3}  # the truncated image never reaches the model
    assert all(len(d["instances"]) == 1 and torch.isfinite(d["instances"].gt_boxes.tensor).all() for d in seen)


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="DATASETS.ON_BAD_ANNOTATION must be one of"):
        check_dataset_dicts([_record("a.jpg", [])], "x", "ignore")
