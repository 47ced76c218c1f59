"""ICDAR 2015 and polygon-text ground-truth parsers and writers."""
import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dld.data.formats import (
    AnnotationFormatError,
    parse_icdar2015_gt,
    parse_polygon_gt,
    write_icdar2015_gt,
    write_polygon_gt,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def samples() -> Path:
    if not (SHARED_DATA / "samples").is_dir():
        pytest.skip(f"the shared sample data is absent ({SHARED_DATA / 'samples'})")
    return SHARED_DATA / "samples"


QUADS = [
    {"polygon": np.array([[10, 20], [60, 22], [59, 40], [9, 38]], float), "text": "Hello, world", "ignore": False},
    {"polygon": np.array([[0, 0], [5, 0], [5, 5], [0, 5]], float), "text": "###", "ignore": True},
    {"polygon": np.array([[1, 2], [3, 2], [3, 4], [1, 4]], float), "text": "2015", "ignore": False},
]


def _check_same(parsed, expected):
    assert len(parsed) == len(expected)
    for p, e in zip(parsed, expected):
        np.testing.assert_array_equal(p["polygon"], e["polygon"])
        assert p["polygon"].dtype == np.float64
        assert (p["text"], p["ignore"]) == (e["text"], e["ignore"])


def test_icdar2015_round_trip(tmp_path):
    path = tmp_path / "gt_img_1.txt"
    write_icdar2015_gt(path, QUADS)
    assert path.read_text(encoding="utf-8").splitlines()[0] == "10,20,60,22,59,40,9,38,Hello, world"
    _check_same(parse_icdar2015_gt(path), QUADS)


def test_polygon_round_trip(tmp_path):
    curved = np.array([[0, 10], [10, 5], [20, 4], [30, 5], [40, 10], [38, 20], [20, 15], [2, 20]], float)
    words = QUADS + [
        {"polygon": curved, "text": "a,b,,c", "ignore": False},
        {"polygon": curved[:3], "text": "#", "ignore": True},
    ]
    path = tmp_path / "poly_gt_img1.txt"
    write_polygon_gt(path, words)
    _check_same(parse_polygon_gt(path), words)
    # (polygon, text) pairs are accepted too, and ignore=True writes ###.
    write_polygon_gt(path, [(curved, "x"), {"polygon": curved, "text": "hidden", "ignore": True}])
    assert [w["text"] for w in parse_polygon_gt(path)] == ["x", "###"]


def test_writers_reject_bad_items(tmp_path):
    with pytest.raises(ValueError, match="4"):
        write_icdar2015_gt(tmp_path / "a.txt", [(np.zeros((5, 2)), "x")])
    with pytest.raises(ValueError, match="line break"):
        write_polygon_gt(tmp_path / "a.txt", [(np.zeros((4, 2)), "a\nb")])


def test_bom_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_bytes("\ufeff1,2,3,4,5,6,7,8,ARMANI\r\n\r\n  \r\n9,10,11,12,13,14,15,16,###\r\n".encode("utf-8"))
    words = parse_icdar2015_gt(path)
    assert [w["text"] for w in words] == ["ARMANI", "###"]
    assert [w["ignore"] for w in words] == [False, True]
    np.testing.assert_array_equal(words[0]["polygon"], [[1, 2], [3, 4], [5, 6], [7, 8]])
    poly_path = tmp_path / "poly.txt"
    poly_path.write_bytes("\ufeff1,2,3,4,5,6,Caf\u00e9\r\n".encode("utf-8"))
    assert parse_polygon_gt(poly_path)[0]["text"] == "Caf\u00e9"


@pytest.mark.parametrize(
    "parse, bad_line",
    [
        (parse_icdar2015_gt, "1,2,3,4,5,6,7,ARMANI"),  # a coordinate is missing
        (parse_icdar2015_gt, "1,2,3,4,x,6,7,8,ARMANI"),
        (parse_polygon_gt, "1,2,3,4,ARMANI"),  # two points only
    ],
)
def test_malformed_line_strict_and_lenient(tmp_path, caplog, parse, bad_line):
    path = tmp_path / "gt_bad.txt"
    path.write_text(f"1,2,3,4,5,6,7,8,ok\n{bad_line}\n9,9,9,9,9,9,9,9,fine\n", encoding="utf-8")
    with pytest.raises(AnnotationFormatError) as e:
        parse(path)
    assert isinstance(e.value, ValueError)
    assert "gt_bad.txt" in str(e.value) and "line 2" in str(e.value)

    with caplog.at_level(logging.WARNING, logger="dld.data.formats"):
        words = parse(path, lenient=True)
    assert isinstance(words, list) and [w["text"] for w in words] == ["ok", "fine"]
    assert words.num_skipped == 1
    assert "line 2" in caplog.text
    assert parse(tmp_path / "gt_bad.txt", lenient=True).num_skipped == 1


def test_non_utf8_file_names_the_file(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("1,2,3,4,5,6,7,8,caf\u00e9\n".encode("latin-1"))
    for parse in (parse_icdar2015_gt, parse_polygon_gt):
        with pytest.raises(AnnotationFormatError, match="latin1.txt"):
            parse(path)


def test_numeric_transcription_is_not_a_coordinate(tmp_path):
    path = tmp_path / "poly.txt"
    path.write_text("1,2,3,4,5,6,7,8,2015\n1,2,3,4,5,6,7,8,9,10\n", encoding="utf-8")
    words = parse_polygon_gt(path)
    assert [len(w["polygon"]) for w in words] == [4, 4]
    assert [w["text"] for w in words] == ["2015", "9,10"]


def test_real_icdar2015_file(samples):
    words = parse_icdar2015_gt(samples / "icdar2015" / "gts" / "gt_img_784.txt")
    assert words and words[0]["text"] == "ARMANI"
    np.testing.assert_array_equal(words[0]["polygon"], [[462, 113], [526, 107], [528, 128], [465, 134]])
    assert all(w["polygon"].shape == (4, 2) for w in words)
    assert all(w["ignore"] == (w["text"] == "###") for w in words)


def test_real_totaltext_file(samples):
    words = parse_polygon_gt(samples / "totaltext" / "gts_txt" / "poly_gt_img3.txt")
    assert [w["text"] for w in words[:4]] == ["KELUAR", "naughty", "NURS", "restaurant"]
    assert [len(w["polygon"]) for w in words[:4]] == [4, 6, 6, 8]


_TRANSCRIPTIONS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)


@settings(max_examples=200, deadline=None)
@given(coords=st.lists(st.integers(-10**6, 10**6), min_size=8, max_size=8), text=_TRANSCRIPTIONS)
def test_icdar2015_line_round_trips(tmp_path_factory, coords, text):
    path = tmp_path_factory.mktemp("prop") / "gt.txt"
    path.write_text(",".join(map(str, coords)) + "," + text + "\n", encoding="utf-8")
    words = parse_icdar2015_gt(path)
    assert len(words) == 1
    assert words[0]["polygon"].reshape(-1).tolist() == coords
    assert words[0]["text"] == text and words[0]["ignore"] == (text == "###")
    write_icdar2015_gt(path, words)
    assert parse_icdar2015_gt(path)[0]["text"] == text
