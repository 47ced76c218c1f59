"""tools/demo.py: several inputs, distinct picture names, bad images skipped, nothing lost on a crash, video."""
import json
import logging

import cv2
import numpy as np
import pytest

from reliability_support import CONFIG, TINY
from test_dld_table import _tool

pytestmark = pytest.mark.usefixtures("single_thread")

# Random weights (TINY has MODEL.WEIGHTS ""), every detection kept so that there are words to write.
ARGS = ["--config-file", CONFIG, "--confidence-threshold", "0.0"]
OPTS = ["--opts", *TINY, "MODEL.DEVICE", "cpu"]


@pytest.fixture(scope="module")
def demo():
    return _tool("demo")


def _write_image(path, seed: int, size=(96, 128)) -> str:
    image = np.random.default_rng(seed).integers(0, 255, size=(*size, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return str(path)


def _records(out):
    return [json.loads(line) for line in (out / "words.jsonl").read_text().splitlines()]


def test_same_stem_in_two_formats_and_two_folders_gives_distinct_pictures(demo, tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    a_jpg = _write_image(tmp_path / "one/a.jpg", 0)
    a_png = _write_image(tmp_path / "one/a.png", 1)
    other = _write_image(tmp_path / "two/a.jpg", 2)
    out = tmp_path / "out"
    # A folder, a glob and a file, the folder's a.jpg named twice: each image once, in the order given.
    counts = demo.main([*ARGS, "--input", str(tmp_path / "one"), str(tmp_path / "two/*.jpg"), a_jpg,
                        "--output", str(out), *OPTS])
    assert counts["written"] == 3
    records = _records(out)
    assert [r["file"] for r in records] == [a_jpg, a_png, other]
    names = [r["output"] for r in records]
    assert len(set(names)) == 3 and names == ["a.jpg.png", "a.png.png", "a.jpg-2.png"]
    for name, source in zip(names, (a_jpg, a_png, other)):
        drawn = cv2.imread(str(out / name))
        assert drawn is not None and drawn.shape == cv2.imread(source).shape


def test_unreadable_image_in_a_folder_is_skipped_and_counted(demo, tmp_path, caplog):
    images = tmp_path / "images"
    images.mkdir()
    good = _write_image(images / "good.jpg", 0)
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="dld.demo"):
        counts = demo.main([*ARGS, "--input", str(images), "--output", str(out), *OPTS])
    assert counts == {"written": 1, "skipped_unreadable": 1, "already_done": 0}
    assert [r["file"] for r in _records(out)] == [good]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and "broken.jpg" in skipped[0] and "\n" not in skipped[0]
    # A log line per image: words found, seconds, selected scale.
    done = [r.getMessage() for r in caplog.records if "good.jpg" in r.getMessage()]
    assert len(done) == 1 and " words, " in done[0] and " s, scale 1" in done[0]


def test_a_crash_keeps_the_images_before_it_and_resume_goes_on(demo, tmp_path, monkeypatch):
    files = [_write_image(tmp_path / f"img_{i}.jpg", i) for i in range(3)]
    out = tmp_path / "out"
    from dld.engine import TextSpotterPredictor

    real_call = TextSpotterPredictor.__call__
    calls = []

    def crash_on_the_second(self, image):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed mid-run")
        return real_call(self, image)

    monkeypatch.setattr(TextSpotterPredictor, "__call__", crash_on_the_second)
    with pytest.raises(RuntimeError, match="killed mid-run"):
        demo.main([*ARGS, "--input", *files, "--output", str(out), *OPTS])
    records = _records(out)
    assert [r["file"] for r in records] == files[:1]
    # Numbers are rounded: no float32 noise in the file.
    assert records[0]["words"] and all(round(v, 4) == v for w in records[0]["words"] for v in w["box"])
    assert set(records[0]) >= {"selected_scale", "gflops", "seconds", "words", "output"}

    monkeypatch.setattr(TextSpotterPredictor, "__call__", real_call)
    counts = demo.main([*ARGS, "--input", *files, "--output", str(out), "--resume", *OPTS])
    assert counts == {"written": 2, "skipped_unreadable": 0, "already_done": 1}
    assert [r["file"] for r in _records(out)] == files


def test_a_missing_input_stops_before_the_model_is_built(demo, tmp_path, monkeypatch, capsys):
    import dld.engine

    def fail(*args, **kwargs):
        raise AssertionError("the model was built before the input was checked")

    monkeypatch.setattr(dld.engine, "TextSpotterPredictor", fail)
    good = _write_image(tmp_path / "a.jpg", 0)
    with pytest.raises(SystemExit) as exit_info:
        demo.main([*ARGS, "--input", good, str(tmp_path / "missing*.jpg"), "--output", str(tmp_path / "out"), *OPTS])
    assert exit_info.value.code == 2
    assert "missing*.jpg does not exist" in capsys.readouterr().err


def test_video_input_writes_an_annotated_video(demo, tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (128, 96))
    for i in range(3):
        writer.write(np.random.default_rng(i).integers(0, 255, size=(96, 128, 3), dtype=np.uint8))
    writer.release()
    out = tmp_path / "out"
    assert demo.main([*ARGS, "--video-input", str(video), "--output", str(out), *OPTS]) == {"frames": 3}
    assert [r["frame"] for r in _records(out)] == [0, 1, 2]
    written = cv2.VideoCapture(str(out / "clip.mp4"))
    frames = []
    while True:
        ok, frame = written.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 3 and frames[0].shape == (96, 128, 3)
