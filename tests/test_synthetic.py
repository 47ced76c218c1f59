"""The embedded synthetic dataset: determinism, geometry, size classes and the on-disk round trip."""
import importlib.util
import itertools
import string
from pathlib import Path

import numpy as np
import pytest
from detectron2.structures import BoxMode
from shapely.geometry import Polygon

from dld.data.formats import parse_icdar2015_gt
from dld.data.synthetic import (
    SynthConfig,
    find_fonts,
    generate_image,
    generate_split,
    load_synthetic_split,
    split_is_current,
    synthetic_split_dir,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
PRINTABLE = set(string.printable[:95])


def _text_height(polygon: np.ndarray) -> float:
    """Mean distance between matching points of the top and bottom edges."""
    n = len(polygon) // 2
    return float(np.linalg.norm(polygon[:n] - polygon[n:][::-1], axis=1).mean())


def _signed_area(polygon: np.ndarray) -> float:
    """Positive for clockwise as displayed (y pointing down)."""
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def test_same_seed_same_output_different_seed_different():
    cfg = SynthConfig(num_images=3, seed=5)
    for index in (1, 2, 3):
        img_a, words_a = generate_image(cfg, "train", index)
        img_b, words_b = generate_image(cfg, "train", index)
        assert img_a.tobytes() == img_b.tobytes()
        assert [t for _, t in words_a] == [t for _, t in words_b]
        for (pa, _), (pb, _) in zip(words_a, words_b):
            np.testing.assert_array_equal(pa, pb)
    other_seed, _ = generate_image(SynthConfig(num_images=3, seed=6), "train", 1)
    other_split, _ = generate_image(cfg, "val", 1)
    img, _ = generate_image(cfg, "train", 1)
    assert other_seed.tobytes() != img.tobytes()
    assert other_split.tobytes() != img.tobytes()


def test_words_are_valid_inside_and_disjoint():
    cfg = SynthConfig(num_images=25, seed=1)
    num_words = 0
    for index in range(1, 26):
        img, words = generate_image(cfg, "train", index)
        h, w = img.shape[:2]
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert max(h, w) == cfg.image_size
        shapes = []
        for polygon, text in words:
            assert polygon.shape in ((4, 2), (14, 2)), polygon.shape
            assert (polygon >= 0).all() and (polygon[:, 0] <= w - 1).all() and (polygon[:, 1] <= h - 1).all()
            shape = Polygon(polygon)
            assert shape.is_valid and shape.area > 4
            assert _signed_area(polygon) > 0, "polygons must be clockwise"
            assert text and set(text) <= PRINTABLE and len(text) <= 24
            shapes.append(shape)
        for a, b in itertools.combinations(shapes, 2):
            assert not a.intersects(b)
        num_words += len(words)
    assert num_words >= 25


def test_text_height_varies_between_images_not_within():
    cfg = SynthConfig(num_images=30, seed=0)
    per_image = []
    for index in range(1, 31):
        _, words = generate_image(cfg, "train", index)
        heights = [_text_height(p) for p, t in words if t != "###"]
        if heights:
            per_image.append(np.log(heights))
    medians = np.exp([np.median(h) for h in per_image])
    assert np.percentile(medians, 90) / np.percentile(medians, 10) > 2.5
    lo, hi = cfg.text_height_range
    assert medians.min() < 2 * lo * cfg.image_size and medians.max() > 0.5 * hi * cfg.image_size
    within = np.sqrt(np.mean(np.concatenate([h - h.mean() for h in per_image]) ** 2))
    between = np.std([h.mean() for h in per_image])
    assert between > 2 * within


def test_generate_split_round_trip(tmp_path):
    cfg = SynthConfig(num_images=5, seed=2)
    root = str(tmp_path / "a")
    split_dir = generate_split(cfg, root, "val", num_workers=1, progress=False)
    assert split_dir == synthetic_split_dir(root, "val")
    assert split_is_current(cfg, root, "val")
    assert not split_is_current(SynthConfig(num_images=6, seed=2), root, "val")

    dataset = load_synthetic_split(root, "val")
    assert [d["image_id"] for d in dataset] == [1, 2, 3, 4, 5]
    for d in dataset:
        img, words = generate_image(cfg, "val", d["image_id"])
        assert Path(d["file_name"]).is_absolute() and Path(d["file_name"]).is_file()
        assert (d["height"], d["width"]) == img.shape[:2]
        annos = d["annotations"]
        assert [a["text"] for a in annos] == [t for _, t in words]
        for anno, (polygon, text) in zip(annos, words):
            loaded = np.array(anno["segmentation"][0]).reshape(-1, 2)
            np.testing.assert_allclose(loaded, polygon, atol=0.5 + 1e-6)
            x0, y0, x1, y1 = anno["bbox"]
            assert anno["bbox_mode"] == BoxMode.XYXY_ABS
            assert (x0, y0, x1, y1) == (loaded[:, 0].min(), loaded[:, 1].min(), loaded[:, 0].max(), loaded[:, 1].max())
            assert anno["category_id"] == 0 and anno["iscrowd"] == int(text == "###")

        quads = parse_icdar2015_gt(Path(split_dir) / "gts_ic15" / f"gt_img_{d['image_id']}.txt")
        assert [q["text"] for q in quads] == [t for _, t in words]
        for q, (polygon, _) in zip(quads, words):
            assert _signed_area(q["polygon"]) > 0
            assert (q["polygon"] >= 0).all() and (q["polygon"] <= [d["width"] - 1, d["height"] - 1]).all()
            assert Polygon(q["polygon"]).buffer(1.5).contains(Polygon(polygon).buffer(-1.0))


def test_split_is_independent_of_worker_count(tmp_path):
    cfg = SynthConfig(num_images=6, seed=3)
    one = Path(generate_split(cfg, str(tmp_path / "one"), "train", num_workers=1, progress=False))
    two = Path(generate_split(cfg, str(tmp_path / "two"), "train", num_workers=2, progress=False))
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert len(files) == 3 * 6 + 1
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    for f in files:
        assert (one / f).read_bytes() == (two / f).read_bytes(), f


def test_missing_split_names_path_and_command(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_synthetic_split(str(tmp_path), "train")
    assert str(tmp_path / "synth_text" / "train") in str(e.value)
    assert "generate_synthetic_data.py" in str(e.value)


def test_fonts_and_config_errors(tmp_path):
    fonts = find_fonts()
    assert fonts and all(Path(f).name.startswith(("DejaVu", "STIXGeneral")) for f in fonts)
    with pytest.raises(FileNotFoundError):
        find_fonts(str(tmp_path / "no_such_dir"))
    with pytest.raises(ValueError):
        SynthConfig(num_images=1, text_height_range=(0.3, 0.1))
    assert SynthConfig(num_images=1, text_height_range=[0.05, 0.1]).text_height_range == (0.05, 0.1)


def test_no_font_found_is_a_clear_error(tmp_path, monkeypatch):
    import matplotlib

    monkeypatch.setattr(matplotlib, "get_data_path", lambda: str(tmp_path))
    find_fonts.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="No usable font"):
            find_fonts(str(tmp_path))
    finally:
        find_fonts.cache_clear()


def test_command_generates_then_skips(tmp_path, capsys):
    script = REPO_ROOT / "tools" / "generate_synthetic_data.py"
    spec = importlib.util.spec_from_file_location("generate_synthetic_data", script)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    argv = ["--output", str(tmp_path), "--num-train", "2", "--num-val", "1", "--num-workers", "1", "--no-progress"]
    argv += ["--opts", "DATASETS.SYNTH.IMAGE_SIZE", "128"]
    tool.main(argv)
    assert "Wrote 2 images" in capsys.readouterr().out
    dataset = load_synthetic_split(str(tmp_path), "train")
    assert len(dataset) == 2 and max(dataset[0]["height"], dataset[0]["width"]) == 128
    assert len(load_synthetic_split(str(tmp_path), "val")) == 1
    tool.main(argv)
    assert capsys.readouterr().out.count("skipping") == 2
    tool.main(argv + ["DATASETS.SYNTH.SEED", "1"])
    assert "Wrote 2 images" in capsys.readouterr().out


def test_straight_only_level_is_deterministic_and_axis_aligned():
    easy = SynthConfig(num_images=4, seed=5, geometry_probs=(1.0, 0.0, 0.0, 0.0))
    for index in (1, 2, 3, 4):
        img_a, words_a = generate_image(easy, "train", index)
        img_b, words_b = generate_image(easy, "train", index)
        assert img_a.tobytes() == img_b.tobytes()
        assert [t for _, t in words_a] == [t for _, t in words_b]
        for polygon, text in words_a:
            # Straight words are upright rectangles: top and bottom edges horizontal, sides vertical.
            assert polygon.shape == (4, 2), text
            assert polygon[0, 1] == pytest.approx(polygon[1, 1]) and polygon[2, 1] == pytest.approx(polygon[3, 1])
            assert polygon[0, 0] == pytest.approx(polygon[3, 0]) and polygon[1, 0] == pytest.approx(polygon[2, 0])
    # The default level keeps today's mix: some word of these images is not an upright rectangle.
    default = SynthConfig(num_images=4, seed=5)
    shapes = [p for i in (1, 2, 3, 4) for p, _ in generate_image(default, "train", i)[1]]
    assert any(p.shape != (4, 2) or abs(p[0, 1] - p[1, 1]) > 1e-6 for p in shapes)


def test_geometry_probs_are_checked():
    with pytest.raises(ValueError, match="geometry_probs"):
        SynthConfig(num_images=1, geometry_probs=(0.5, 0.2, 0.2, 0.2))
    with pytest.raises(ValueError, match="geometry_probs"):
        SynthConfig(num_images=1, geometry_probs=(1.0, 0.0, 0.0))
