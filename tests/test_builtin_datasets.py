"""The registered real datasets, loaded through DatasetCatalog from temporary $DETECTRON2_DATASETS layouts."""
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.detection_utils import read_image
from detectron2.structures import BoxMode
from PIL import Image
from scipy.io import savemat

import dld  # noqa: F401  registers the datasets
from dld.data.builtin import TEXT_SPLITS, image_id_from_name, load_text_dataset, resolve_dataset_path

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_SPLITS = [
    "ic13_train", "ic13_test", "ic15_train", "ic15_test", "mlt17_train", "mlt17_val",
    "totaltext_train", "totaltext_test", "synthtext",
]
IC15_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 784]


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(src, dst)
    except OSError:
        shutil.copy(src, dst)


@pytest.fixture
def real_root(tmp_path, shared_data, monkeypatch) -> Path:
    """ic15_train = the 11 ICDAR 2015 samples; totaltext_test = img3 (.mat GT) + img564 (converted .txt GT)."""
    samples = shared_data / "samples"
    root = tmp_path / "datasets"
    for i in IC15_IDS:
        _link(samples / f"icdar2015/images/img_{i}.jpg", root / f"icdar2015/ch4_training_images/img_{i}.jpg")
        _link(
            samples / f"icdar2015/gts/gt_img_{i}.txt",
            root / f"icdar2015/ch4_training_localization_transcription_gt/gt_img_{i}.txt",
        )
    for i in (3, 564):
        _link(samples / f"totaltext/images/img{i}.jpg", root / f"totaltext/Images/Test/img{i}.jpg")
    _link(samples / "totaltext/gts_mat/poly_gt_img3.mat", root / "totaltext/gt/Test/poly_gt_img3.mat")
    _link(samples / "totaltext/gts_txt/poly_gt_img564.txt", root / "totaltext/gt/Test/poly_gt_img564.txt")
    monkeypatch.setenv("DETECTRON2_DATASETS", str(root))
    return root


def _check_dicts(dicts, decode: bool = True):
    for d in dicts:
        assert d["image_id"] == image_id_from_name(d["file_name"])
        if decode:
            assert read_image(d["file_name"]).shape[:2] == (d["height"], d["width"])
        for a in d["annotations"]:
            poly = np.asarray(a["segmentation"][0]).reshape(-1, 2)
            assert len(a["segmentation"]) == 1 and len(poly) >= 4
            assert a["bbox_mode"] == BoxMode.XYXY_ABS and a["category_id"] == 0
            assert a["bbox"] == [poly[:, 0].min(), poly[:, 1].min(), poly[:, 0].max(), poly[:, 1].max()]
            assert a["iscrowd"] == int(a["text"] == "###")
            assert (poly >= 0).all() and (poly[:, 0] <= d["width"]).all() and (poly[:, 1] <= d["height"]).all()


def test_ic15_train_from_real_samples(real_root, caplog):
    with caplog.at_level(logging.INFO, logger="dld.data.builtin"):
        dicts = DatasetCatalog.get("ic15_train")
    assert [d["image_id"] for d in dicts] == IC15_IDS
    assert [os.path.basename(d["file_name"]) for d in dicts] == [f"img_{i}.jpg" for i in IC15_IDS]
    assert all((d["height"], d["width"]) == (720, 1280) for d in dicts)
    assert sum(len(d["annotations"]) for d in dicts) == 97
    assert sum(1 - a["iscrowd"] for d in dicts for a in d["annotations"]) == 32
    # Images whose words are all don't care are kept (img_4, img_5).
    assert [sum(1 - a["iscrowd"] for a in d["annotations"]) for d in dicts][3:5] == [0, 0]
    # The real files need no slack: every point lies inside its image, so nothing was clipped.
    assert "Clipped" not in caplog.text
    _check_dicts(dicts)
    first = dicts[-1]["annotations"][0]  # gt_img_784.txt: BOM + CRLF
    assert first["text"] == "ARMANI" and first["segmentation"][0] == [462, 113, 526, 107, 528, 128, 465, 134]


def test_totaltext_test_mat_and_txt(real_root, shared_data):
    dicts = DatasetCatalog.get("totaltext_test")
    assert [d["image_id"] for d in dicts] == [3, 564]
    assert [(d["height"], d["width"]) for d in dicts] == [(960, 1280), (1200, 1600)]
    assert [len(d["annotations"]) for d in dicts] == [4, 14]
    assert [sum(1 - a["iscrowd"] for a in d["annotations"]) for d in dicts] == [4, 10]
    _check_dicts(dicts)
    # img3 was loaded from its .mat: the same polygons as its converted text.
    from dld.data.formats import parse_polygon_gt

    txt = parse_polygon_gt(shared_data / "samples/totaltext/gts_txt/poly_gt_img3.txt")
    assert [a["segmentation"][0] for a in dicts[0]["annotations"]] == [w["polygon"].ravel().tolist() for w in txt]


def test_metadata_of_real_splits(real_root):
    for name in REAL_SPLITS:
        meta = MetadataCatalog.get(name)
        assert meta.thing_classes == ["text"] and meta.evaluator_type == "text"
        expected = "polygon" if name.startswith("totaltext") else "quad"
        assert meta.polygon_format == expected
        if name in ("ic13_test", "ic15_test", "totaltext_test"):
            assert isinstance(meta.eval_gt_zip, str)
        else:
            assert meta.get("eval_gt_zip") is None and meta.get("lexicons") is None
    for name in ("synth_text_train", "synth_text_val"):
        meta = MetadataCatalog.get(name)
        assert (meta.evaluator_type, meta.polygon_format) == ("text", "polygon")
    ic15 = MetadataCatalog.get("ic15_test")
    assert resolve_dataset_path(ic15.eval_gt_zip) == str(real_root / "evaluation/gt-icdar2015.zip")
    assert set(ic15.lexicons) == {"strong", "weak", "generic"}
    assert resolve_dataset_path(ic15.lexicons["strong"]) == str(
        real_root / "evaluation/lexicons/icdar2015/strong_lexicon.zip"
    )
    assert set(MetadataCatalog.get("ic13_test").lexicons) == {"strong", "weak", "generic"}
    tt = MetadataCatalog.get("totaltext_test")
    assert resolve_dataset_path(tt.eval_gt_zip) == str(real_root / "evaluation/total-text-gt.zip")
    full = real_root / "evaluation/lexicons/total-text/full_lexicons.txt"
    assert resolve_dataset_path(tt.lexicons["full"]) == str(full)
    assert resolve_dataset_path("/abs/file.zip") == "/abs/file.zip"


def test_metadata_paths_match_the_shared_data_names(shared_data):
    """Copying shared/data/eval into $DETECTRON2_DATASETS/evaluation gives every metadata path a file."""
    mapping = {"evaluation/lexicons/": shared_data / "eval/lexicons", "evaluation/": shared_data / "eval/gts"}
    for name in ("ic13_test", "ic15_test", "totaltext_test"):
        meta = MetadataCatalog.get(name)
        for rel in [meta.eval_gt_zip, *meta.lexicons.values()]:
            prefix = next(p for p in mapping if rel.startswith(p))
            assert (mapping[prefix] / rel[len(prefix):]).is_file(), rel


# ---------------------------------------------------------------------------------------------- missing data
def test_missing_dataset_fails_when_used(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "empty"))
    for name in REAL_SPLITS:
        with pytest.raises(FileNotFoundError) as e:
            DatasetCatalog.get(name)
        assert str(tmp_path / "empty") in str(e.value) and "datasets/README.md" in str(e.value)
    with pytest.raises(FileNotFoundError, match="Challenge4_Test_Task1_GT"):
        DatasetCatalog.get("ic15_test")
    # Only the image folder missing: it is named.
    (tmp_path / "empty/icdar2015/Challenge4_Test_Task1_GT").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="ch4_test_images"):
        DatasetCatalog.get("ic15_test")


def test_import_with_missing_root(tmp_path):
    env = dict(os.environ, DETECTRON2_DATASETS=str(tmp_path / "nowhere"))
    code = (
        "import dld\nfrom detectron2.data import DatasetCatalog, MetadataCatalog\n"
        f"assert set({REAL_SPLITS!r}) <= set(DatasetCatalog.list())\n"
        "print(MetadataCatalog.get('ic15_test').eval_gt_zip)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "evaluation/gt-icdar2015.zip"
    assert not (tmp_path / "nowhere").exists()


# ---------------------------------------------------------------------------------------------- small generated layouts
def _image(path: Path, size=(64, 48), exif_orientation=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, (200, 180, 160))
    fmt = {".png": "PNG", ".gif": "GIF"}.get(path.suffix.lower(), "JPEG")
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        im.save(path, fmt, exif=exif)
    else:
        im.save(path, fmt)


def test_ic13_and_mlt_layouts(tmp_path, monkeypatch):
    root = tmp_path / "datasets"
    monkeypatch.setenv("DETECTRON2_DATASETS", str(root))
    split = TEXT_SPLITS["ic13_train"]
    _image(root / split.image_dirs[0] / "100.jpg")
    _image(root / split.image_dirs[0] / "101.jpg")
    (root / split.gt_dir).mkdir(parents=True)
    (root / split.gt_dir / "gt_100.txt").write_bytes(b'1 2 30 20 "Tired\\"ness"\r\n')
    (root / split.gt_dir / "gt_101.txt").write_bytes(b"")  # an image without words is kept
    dicts = DatasetCatalog.get("ic13_train")
    assert [d["image_id"] for d in dicts] == [100, 101]
    assert dicts[0]["annotations"][0]["text"] == 'Tired"ness' and dicts[1]["annotations"] == []
    assert dicts[0]["annotations"][0]["segmentation"] == [[1, 2, 30, 2, 30, 20, 1, 20]]
    _check_dicts(dicts)

    # MLT: images spread over ch8_training_images_<k>, jpg / png / gif / upper-case extension.
    gt_dir = root / TEXT_SPLITS["mlt17_train"].gt_dir
    gt_dir.mkdir(parents=True)
    for i, name in enumerate(["1/img_1.jpg", "1/img_2.png", "2/img_3.gif", "2/img_4.JPG"], start=1):
        _image(root / f"mlt2017/ch8_training_images_{name}")
        (gt_dir / f"gt_img_{i}.txt").write_text(f"1,2,9,2,9,8,1,8,Latin,w{i}\n3,3,5,3,5,5,3,5,None,###\n",
                                                encoding="utf-8")
    dicts = DatasetCatalog.get("mlt17_train")
    assert [d["image_id"] for d in dicts] == [1, 2, 3, 4]
    assert [os.path.splitext(d["file_name"])[1] for d in dicts] == [".jpg", ".png", ".gif", ".JPG"]
    assert [[a["iscrowd"] for a in d["annotations"]] for d in dicts] == [[0, 1]] * 4
    _check_dicts(dicts)


def _small_split(tmp_path: Path, n: int = 3):
    images, gts = tmp_path / "images", tmp_path / "gts"
    gts.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        _image(images / f"img_{i}.jpg")
        (gts / f"gt_img_{i}.txt").write_text(f"1,1,20,1,20,10,1,10,w{i}\n", encoding="utf-8")
    return images, gts


def test_unpaired_files(tmp_path, caplog):
    images, gts = _small_split(tmp_path)
    (gts / "gt_img_9.txt").write_text("1,1,2,1,2,2,1,2,x\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError) as e:
        load_text_dataset([str(images)], str(gts), "icdar2015")
    assert str(gts / "gt_img_9.txt") in str(e.value) and str(images / "img_9.jpg") in str(e.value)
    with caplog.at_level(logging.WARNING, logger="dld.data.builtin"):
        dicts = load_text_dataset([str(images)], str(gts), "icdar2015", lenient=True)
    assert [d["image_id"] for d in dicts] == [1, 2, 3]
    assert "1 unpaired file" in caplog.text

    (gts / "gt_img_9.txt").unlink()
    _image(images / "img_8.png")
    with pytest.raises(FileNotFoundError) as e:
        load_text_dataset([str(images)], str(gts), "icdar2015")
    assert str(images / "img_8.png") in str(e.value) and str(gts / "gt_img_8.txt") in str(e.value)


def test_malformed_gt_strict_and_lenient(tmp_path, caplog):
    images, gts = _small_split(tmp_path)
    (gts / "gt_img_2.txt").write_text("1,1,20,1,20,10,1,10,ok\n1,1,x,1,20,10,1,10,bad\n", encoding="utf-8")
    from dld.data.formats import AnnotationFormatError

    with pytest.raises(AnnotationFormatError, match=r"gt_img_2\.txt, line 2"):
        load_text_dataset([str(images)], str(gts), "icdar2015")
    with caplog.at_level(logging.WARNING):
        dicts = load_text_dataset([str(images)], str(gts), "icdar2015", lenient=True)
    assert [len(d["annotations"]) for d in dicts] == [1, 1, 1]
    assert "skipped 1 malformed annotation" in caplog.text


def test_points_outside_the_image_are_clipped_and_logged(tmp_path, caplog):
    images, gts = _small_split(tmp_path, n=1)  # 64 x 48 image
    (gts / "gt_img_1.txt").write_text("-3,1,70,1,70,60,-3,60,big\n1,1,20,1,20,10,1,10,in\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="dld.data.builtin"):
        (d,) = load_text_dataset([str(images)], str(gts), "icdar2015")
    assert d["annotations"][0]["segmentation"] == [[0, 1, 64, 1, 64, 48, 0, 48]]
    assert d["annotations"][0]["bbox"] == [0, 1, 64, 48]
    assert d["annotations"][1]["segmentation"] == [[1, 1, 20, 1, 20, 10, 1, 10]]
    assert "Clipped 1 polygon(s)" in caplog.text and "12.0 px" in caplog.text


def test_exif_rotation_swaps_height_and_width(tmp_path, caplog):
    images, gts = _small_split(tmp_path, n=1)
    _image(images / "img_1.jpg", size=(64, 48), exif_orientation=6)
    with caplog.at_level(logging.WARNING, logger="dld.data.builtin"):
        (d,) = load_text_dataset([str(images)], str(gts), "icdar2015")
    assert (d["height"], d["width"]) == read_image(d["file_name"]).shape[:2] == (64, 48)
    assert "EXIF rotation" in caplog.text


def test_synthtext_registered(tmp_path, monkeypatch):
    root = tmp_path / "datasets"
    monkeypatch.setenv("DETECTRON2_DATASETS", str(root))
    _image(root / "SynthText/8/ballet_106_0.jpg", size=(80, 60))
    _image(root / "SynthText/8/ballet_106_1.jpg", size=(50, 40))
    boxes = np.array([[[-4, 90, 90, -4], [2, 2, 20, 20]], [[10, 30, 30, 10], [5, 5, 15, 15]]], float)
    cells = {k: np.empty((1, 2), dtype=object) for k in ("imnames", "wordBB", "txt")}
    cells["imnames"][0, 0], cells["imnames"][0, 1] = np.array(["8/ballet_106_0.jpg"]), np.array(["8/ballet_106_1.jpg"])
    cells["wordBB"][0, 0], cells["wordBB"][0, 1] = boxes.transpose(1, 2, 0), boxes[0]  # 2x4x2 and 2x4
    cells["txt"][0, 0], cells["txt"][0, 1] = np.array(["big\nsmall"]), np.array(["one  "])
    savemat(root / "SynthText/gt.mat", cells)
    dicts = DatasetCatalog.get("synthtext")
    assert [(d["image_id"], d["height"], d["width"]) for d in dicts] == [(0, 60, 80), (1, 40, 50)]
    assert [[a["text"] for a in d["annotations"]] for d in dicts] == [["big", "small"], ["one"]]
    # Raw boxes are kept (the mapper clips): the first word reaches outside its 80x60 image.
    assert dicts[0]["annotations"][0]["segmentation"] == [[-4, 2, 90, 2, 90, 20, -4, 20]]
    assert dicts[1]["annotations"][0]["segmentation"] == [[-4, 2, 90, 2, 90, 20, -4, 20]]
    assert (root / "SynthText/gt.dld-cache.npz").is_file()
    assert DatasetCatalog.get("synthtext") == dicts  # from the cache
