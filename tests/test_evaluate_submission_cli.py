"""tools/evaluate_submission.py: one-line errors, non-UTF-8 and empty submissions, the official single threshold."""
import logging
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO_ROOT
from test_dld_table import _tool

TOOL = REPO_ROOT / "tools/evaluate_submission.py"


@pytest.fixture(scope="module")
def tool():
    return _tool("evaluate_submission")


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def _quad(x0, y0, x1, y1):
    return f"{x0},{y0},{x1},{y0},{x1},{y1},{x0},{y1}"


# Image 1: a cared word and a don't-care word; image 2: one cared word; image 3: a word the word-spotting
# filter makes don't care (shorter than 3 letters).
GT = {
    "gt_img_1.txt": f"{_quad(0, 0, 100, 20)},HELLO\n{_quad(0, 50, 100, 70)},###\n",
    "gt_img_2.txt": f"{_quad(0, 0, 100, 20)},WORLD\n",
    "gt_img_3.txt": f"{_quad(0, 0, 100, 20)},AB\n",
}
# Image 1: an exact hit, then a box one third of whose area (1500 of 4500) lies inside the don't-care word;
# image 2: a box of IoU 0.3 (600 / 2000) with its word; image 3: an exact hit.
PRED = {
    "res_img_1.txt": f"{_quad(0, 0, 100, 20)},HELLO\n{_quad(0, 55, 100, 100)},NOISE\n",
    "res_img_2.txt": f"{_quad(0, 0, 30, 20)},WORLD\n",
    "res_img_3.txt": f"{_quad(0, 0, 100, 20)},AB\n",
}


def _run(args, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, str(TOOL), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_single_threshold_reproduces_the_official_iou_switch(tool, tmp_path, capsys):
    gt, pred = _zip(tmp_path / "gt.zip", GT), _zip(tmp_path / "pred.zip", PRED)
    # The official script with -iou 0.1 (IOU_CONSTRAINT = AREA_PRECISION_CONSTRAINT = 0.1), by its rules:
    # image 1: HELLO matched, the second box is don't care (1/3 > 0.1 inside ###) and not counted;
    # image 2: WORLD matched (IoU 0.3 > 0.1); image 3: AB matched.
    # 3 cared words, 3 cared predictions, 3 matched, 3 read right: every P, R, H is 1.
    official = {"num_gt": 3, "num_pred": 3, "num_matched": 3, "num_correct": 3, "num_ignored_pred": 1,
                "det_precision": 1.0, "det_recall": 1.0, "det_hmean": 1.0, "e2e_hmean": 1.0}
    m = tool.main(["--gt", gt, "--pred", pred, "--iou", "0.1", "--single-threshold"])
    assert {k: m[k] for k in official} == official
    assert tool.main(["--gt", gt, "--pred", pred, "--iou", "0.1", "--area-precision", "0.1"]) == m
    # --iou alone keeps the don't-care threshold at 0.5: the second box of image 1 is a false positive.
    alone = tool.main(["--gt", gt, "--pred", pred, "--iou", "0.1"])
    assert (alone["num_pred"], alone["num_matched"], alone["num_ignored_pred"]) == (4, 3, 0)
    assert alone["det_precision"] == pytest.approx(3 / 4)
    assert "don't-care area > 0.1" in capsys.readouterr().out


def test_word_spotting_has_its_detection_row(tool, tmp_path, capsys):
    gt, pred = _zip(tmp_path / "gt.zip", GT), _zip(tmp_path / "pred.zip", PRED)
    m = tool.main(["--gt", gt, "--pred", pred, "--iou", "0.1", "--single-threshold"])
    # Word spotting: AB becomes don't care, so 2 cared words and (the exact hit on AB now lying on a
    # don't-care word) 2 cared predictions, both matched.
    assert (m["ws_num_gt"], m["ws_num_pred"]) == (2, 2)
    assert (m["ws_det_precision"], m["ws_det_recall"], m["ws_det_hmean"]) == (1.0, 1.0, 1.0)
    assert "detection (word-spotting ground truth)" in capsys.readouterr().out


def test_non_utf8_submission_is_read_with_replacement_characters(tool, tmp_path, caplog):
    gt = _zip(tmp_path / "gt.zip", GT)
    pred = _zip(tmp_path / "pred.zip", dict(PRED, **{"res_img_2.txt": _quad(0, 0, 100, 20).encode() + b",W\xf6RLD\xff\n"}))
    with caplog.at_level(logging.WARNING):
        m = tool.main(["--gt", gt, "--pred", pred])
    warnings = [r.getMessage() for r in caplog.records if "not UTF-8" in r.getMessage()]
    assert warnings == [f"{pred}:res_img_2.txt: 2 bytes are not UTF-8, read as U+FFFD (as the official script does)"]
    # The word is read as "W\ufffdRLD\ufffd": its box matches, its text does not.
    assert m["num_matched"] == 3 and m["num_correct"] == 2  # HELLO and AB


@pytest.mark.parametrize("members", [{}, {"res_img_1.txt": "", "res_img_2.txt": "\n"}], ids=["no member", "empty"])
def test_empty_submission_is_warned_about(tool, tmp_path, caplog, members):
    gt, pred = _zip(tmp_path / "gt.zip", GT), _zip(tmp_path / "pred.zip", members)
    with caplog.at_level(logging.WARNING):
        m = tool.main(["--gt", gt, "--pred", pred])
    assert m["num_pred"] == 0 and m["e2e_hmean"] == 0.0
    assert any("holds no prediction" in r.getMessage() and pred in r.getMessage() for r in caplog.records)


def test_user_errors_are_one_line_with_exit_status_2(tmp_path):
    gt = _zip(tmp_path / "gt.zip", GT)
    malformed = _zip(tmp_path / "bad.zip", dict(PRED, **{"res_img_2.txt": f"{_quad(0, 0, 30, 20)},OK\n1,2,oops\n"}))
    stranger = _zip(tmp_path / "stranger.zip", dict(PRED, **{"res_img_9.txt": f"{_quad(0, 0, 30, 20)},X\n"}))
    (tmp_path / "notazip.zip").write_text("hello")
    cases = {
        "missing": ([str(tmp_path / "absent.zip")], ["absent.zip", "no such file"]),
        "not a zip": ([str(tmp_path / "notazip.zip")], ["notazip.zip", "not a zip file"]),
        "malformed": ([malformed], ["bad.zip:res_img_2.txt, line 2", "'1,2,oops'"]),
        "unknown image": ([stranger], ["stranger.zip:res_img_9.txt", "image 9 is not in the ground truth"]),
    }
    for case, (pred, needles) in cases.items():
        proc = _run(["--gt", gt, "--pred", *pred])
        assert proc.returncode == 2, (case, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, (case, proc.stderr)
        assert all(n in lines[0] for n in needles), (case, lines[0])


def test_the_script_scores_without_torch_or_detectron2(tmp_path):
    gt, pred = _zip(tmp_path / "gt.zip", GT), _zip(tmp_path / "pred.zip", PRED)
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['evaluate_submission.py', '--gt', {gt!r}, '--pred', {pred!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(TOOL)!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "print('HEAVY', sorted(m for m in ('torch', 'detectron2') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "| detection " in proc.stdout and "HEAVY []" in proc.stdout
