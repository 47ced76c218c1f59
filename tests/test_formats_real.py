"""Raw-format parsers against the real evaluation files, and small fixtures of the formats not shipped here."""
import logging
import re
import zipfile

import numpy as np
import pytest
from scipy.io import savemat

from dld.data.formats import (
    AnnotationFormatError,
    load_synthtext_gt,
    parse_gt,
    parse_gt_zip,
    parse_icdar2013_gt,
    parse_icdar2015_gt,
    parse_mlt2017_gt,
    parse_polygon_gt,
    parse_synthtext_gt,
    parse_totaltext_gt,
    parse_totaltext_legacy_gt,
    parse_totaltext_mat,
    synthtext_cache_path,
)


# ---------------------------------------------------------------------------------------------- real zips
@pytest.mark.parametrize(
    "zip_name, fmt, member_pattern, files, lines, cared, min_points, max_points",
    [
        ("gt-icdar2013.zip", "icdar2015", r"gt_img_\d+\.txt", 233, 1637, 917, 4, 4),
        ("gt-icdar2015.zip", "icdar2015", r"gt_img_\d+\.txt", 500, 5230, 2077, 4, 4),
        ("total-text-gt.zip", "polygon", r"poly_gt_img\d+\.txt", 300, 2543, 2215, 4, 19),
    ],
)
def test_eval_gt_zips_parse(shared_data, zip_name, fmt, member_pattern, files, lines, cared, min_points, max_points):
    path = shared_data / "eval" / "gts" / zip_name
    parsed = parse_gt_zip(path, fmt)
    assert len(parsed) == files
    assert all(re.fullmatch(member_pattern, name) for name in parsed)
    words = [w for ws in parsed.values() for w in ws]
    assert len(words) == lines
    assert sum(not w["ignore"] for w in words) == cared
    assert all(w["ignore"] == (w["text"] == "###") for w in words)
    num_points = [len(w["polygon"]) for w in words]
    assert (min(num_points), max(num_points)) == (min_points, max_points)
    assert all(ws.num_skipped == 0 for ws in parsed.values())
    # One word per non-blank physical line: nothing merged or dropped.
    with zipfile.ZipFile(path) as zf:
        physical = sum(1 for n in zf.namelist() for line in zf.read(n).decode("utf-8-sig").splitlines() if line.strip())
    assert physical == lines


def test_totaltext_mat_matches_converted_text(shared_data):
    """The official .mat files and the converted text of the same images: same words, same order."""
    samples = shared_data / "samples" / "totaltext"
    converted = parse_gt_zip(shared_data / "eval" / "gts" / "total-text-gt.zip", "polygon")
    expected_rows = {1: 1, 2: 9, 3: 4, 4: 12, 5: 1}
    expected_dont_care = {1: 0, 2: 2, 3: 0, 4: 1, 5: 0}
    for i, rows in expected_rows.items():
        mat_words = parse_totaltext_mat(samples / "gts_mat" / f"poly_gt_img{i}.mat")
        txt_words = converted[f"poly_gt_img{i}.txt"]
        assert len(mat_words) == len(txt_words) == rows
        for m, t in zip(mat_words, txt_words):  # file order, no matching needed
            np.testing.assert_array_equal(m["polygon"], t["polygon"])
            # The only difference: the official "#" don't care is written "###" in the converted text.
            assert t["text"] == ("###" if m["text"] == "#" else m["text"])
            assert m["ignore"] == t["ignore"] == (m["orientation"] == "#")
        assert sum(m["ignore"] for m in mat_words) == expected_dont_care[i]
    # The sample text file of img3 is the same as the zip member, and auto-detection reads all three shapes.
    img3_txt = parse_polygon_gt(samples / "gts_txt" / "poly_gt_img3.txt")
    img3_mat = parse_totaltext_gt(samples / "gts_mat" / "poly_gt_img3.mat")
    assert [w["text"] for w in img3_txt] == [w["text"] for w in img3_mat] == ["KELUAR", "naughty", "NURS", "restaurant"]
    for a, b in zip(img3_txt, img3_mat):
        np.testing.assert_array_equal(a["polygon"], b["polygon"])
    assert [len(w["polygon"]) for w in parse_totaltext_gt(samples / "gts_txt" / "poly_gt_img564.txt")] == [
        7, 7, 10, 4, 7, 4, 4, 4, 4, 4, 5, 5, 4, 10
    ]


def test_real_icdar2015_sample_bytes_and_path_agree(shared_data):
    path = shared_data / "samples" / "icdar2015" / "gts" / "gt_img_784.txt"  # BOM + CRLF
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    from_path, from_bytes = parse_icdar2015_gt(path), parse_icdar2015_gt(raw, name="gt_img_784.txt")
    assert [w["text"] for w in from_path] == [w["text"] for w in from_bytes]
    assert from_path[0]["text"] == "ARMANI" and all("\r" not in w["text"] for w in from_path)


# ---------------------------------------------------------------------------------------------- ICDAR 2013
def test_icdar2013_train_and_test_lines(tmp_path):
    train = tmp_path / "gt_100.txt"
    train.write_bytes(b'38 43 920 215 "Tiredness"\r\n275 264 374 285 "say \\"hi\\""\r\n1 2 3 4 "back\\\\slash"\r\n')
    words = parse_icdar2013_gt(train)
    assert [w["text"] for w in words] == ["Tiredness", 'say "hi"', "back\\slash"]
    np.testing.assert_array_equal(words[0]["polygon"], [[38, 43], [920, 43], [920, 215], [38, 215]])
    assert not any(w["ignore"] for w in words)

    test = tmp_path / "gt_img_1.txt"
    test.write_bytes(b'38, 43, 920, 215, "Tiredness"\r\n10, 20, 30, 40, "a, b"\r\n10, 20, 30, 40, "###"\r\n')
    words = parse_icdar2013_gt(test)
    assert [w["text"] for w in words] == ["Tiredness", "a, b", "###"]
    np.testing.assert_array_equal(words[1]["polygon"], [[10, 20], [30, 20], [30, 40], [10, 40]])
    assert not any(w["ignore"] for w in words)  # no don't-care class in ICDAR 2013


@pytest.mark.parametrize(
    "line, reason",
    [
        ('38 43 920 "Tiredness"', "expected 4 coordinates"),
        ('38 43 920 215 216 "Tiredness"', "expected 4 coordinates"),
        ('38 43 9x0 215 "Tiredness"', "'9x0' is not a number"),
        ("38 43 920 215 Tiredness", "missing the quoted transcription"),
        ('38 43 920 215 "Tiredness', "missing the closing quote"),
        ('38 43 920 215 "Tired" ness', "after the closing quote"),
    ],
)
def test_icdar2013_malformed(tmp_path, line, reason):
    path = tmp_path / "gt_img_7.txt"
    path.write_text(f'1 2 3 4 "ok"\n{line}\n', encoding="ascii")
    with pytest.raises(AnnotationFormatError, match=rf"gt_img_7\.txt, line 2: .*{reason}"):
        parse_icdar2013_gt(path)
    assert parse_icdar2013_gt(path, lenient=True).num_skipped == 1


# ---------------------------------------------------------------------------------------------- MLT 2017
def test_mlt2017_lines(tmp_path, caplog):
    path = tmp_path / "gt_img_5.txt"
    path.write_bytes(
        "\ufeff10,20,90,20,90,48,10,48,Latin,Hello, world\r\n"
        "1,2,3,4,5,6,7,8,Arabic,\u0645\u0631\u062d\u0628\u0627\r\n"
        "1,2,3,4,5,6,7,8,None,###\r\n"
        "1,2,3,4,5,6,7,8,Klingon,qapla'\r\n".encode("utf-8")
    )
    with caplog.at_level(logging.WARNING):
        words = parse_mlt2017_gt(path)
    assert [w["text"] for w in words] == ["Hello, world", "\u0645\u0631\u062d\u0628\u0627", "###", "qapla'"]
    assert [w["script"] for w in words] == ["Latin", "Arabic", "None", "Klingon"]
    assert [w["ignore"] for w in words] == [False, False, True, False]
    assert "Klingon" in caplog.text  # unknown script: accepted with a warning
    path.write_text("1,2,3,4,5,6,7,8,Latin,ok\n1,2,3,4,5,6,7,8,,word\n", encoding="utf-8")
    with pytest.raises(AnnotationFormatError, match=r"gt_img_5\.txt, line 2: the script field is empty"):
        parse_mlt2017_gt(path)


# ---------------------------------------------------------------------------------------------- Total-Text legacy
LEGACY = (
    "x: [[115 503 494 115]], y: [[322 346 426 404]], ornt: [u'm'], transcriptions: [u'nauGHTY']\n"
    "x: [[ 96 136 186 238 298 354 404 456 500 512 486 438 382 326 262 202 146  98\n"
    "   76  74]], y: [[-3 10 20 30 40 50 60 70 80 90 95 85 75 65 55 45 35 25\n"
    "  15  5]], ornt: [u'c'], transcriptions: [u'EAT, \"DRINK\" & it\\'s']\n"
    "\n"
    "x: [[-5 20 20 -5]], y: [[1 1 9 9]], ornt: [u'#'], transcriptions: [u'#']\n"
    "x: [[1 2 3]], y: [[4 5 6]], ornt: [u'h'], transcriptions: [u\"it's [x]\"]\n"
)


def test_totaltext_legacy_lines(tmp_path):
    path = tmp_path / "poly_gt_img11.txt"
    path.write_bytes(LEGACY.replace("\n", "\r\n").encode("utf-8"))
    words = parse_totaltext_legacy_gt(path)
    assert [w["text"] for w in words] == ["nauGHTY", 'EAT, "DRINK" & it\'s', "#", "it's [x]"]
    assert [w["ignore"] for w in words] == [False, False, True, False]
    assert [w["orientation"] for w in words] == ["m", "c", "#", "h"]
    np.testing.assert_array_equal(words[0]["polygon"], [[115, 322], [503, 346], [494, 426], [115, 404]])
    assert words[1]["polygon"].shape == (20, 2)  # the wrapped record
    assert words[1]["polygon"][0].tolist() == [96, -3] and words[1]["polygon"][-1].tolist() == [74, 5]
    np.testing.assert_array_equal(words[2]["polygon"][:, 0], [-5, 20, 20, -5])  # negative coordinates
    # Auto-detection picks the legacy parser.
    assert [w["text"] for w in parse_totaltext_gt(path)] == [w["text"] for w in words]


@pytest.mark.parametrize(
    "record, reason",
    [
        ("x: [[1 2 3]], y: [[4 5]], ornt: [u'h'], transcriptions: [u'a']", "x has 3 values but y has 2"),
        ("x: [[1 b 3]], y: [[4 5 6]], ornt: [u'h'], transcriptions: [u'a']", "'b' is not a number"),
        ("x: [[1 2 3]], y: [[4 5 6]], ornt: [u'h'], transcriptions: [u'a]", "not a list of one quoted string"),
        ("x: [[1 2 3]], ornt: [u'h'], transcriptions: [u'a']", "missing or malformed 'y: \\[\\[...\\]\\]'"),
        ("x: [[1 2]], y: [[4 5]], ornt: [u'h'], transcriptions: [u'a']", "at least 3 points"),
        ("x: [[1 2 3]], y: [[4 5 6]], ornt: [u'h'], transcriptions: [__import__('os')]", "not a list of one"),
    ],
)
def test_totaltext_legacy_malformed(tmp_path, record, reason):
    path = tmp_path / "poly_gt_img12.txt"
    # Line 3 is the bad record; the wrapped record before it spans lines 1-2.
    path.write_text(
        "x: [[1 2\n 3]], y: [[4 5 6]], ornt: [u'h'], transcriptions: [u'a']\n" + record + "\n"
        "x: [[1 2 3]], y: [[4 5 6]], ornt: [u'h'], transcriptions: [u'b']\n",
        encoding="utf-8",
    )
    with pytest.raises(AnnotationFormatError, match=rf"poly_gt_img12\.txt, line 3: .*{reason}"):
        parse_totaltext_legacy_gt(path)
    words = parse_totaltext_legacy_gt(path, lenient=True)
    assert [w["text"] for w in words] == ["a", "b"] and words.num_skipped == 1


def test_totaltext_mat_refined_key_and_errors(tmp_path):
    row = np.empty((1, 6), dtype=object)
    xs, ys = np.array([[1], [5], [5], [1]], np.int16), np.array([[2], [2], [6], [6]], np.int16)  # 4x1 columns
    row[0] = ["x:", xs, "y:", ys, "WORD", "h"]
    savemat(tmp_path / "gt_img3.mat", {"gt": row})
    words = parse_totaltext_mat(tmp_path / "gt_img3.mat")
    np.testing.assert_array_equal(words[0]["polygon"], [[1, 2], [5, 2], [5, 6], [1, 6]])
    assert words[0]["text"] == "WORD"
    savemat(tmp_path / "other.mat", {"boxes": np.zeros((2, 2))})
    with pytest.raises(AnnotationFormatError, match=r"other\.mat: no 'polygt' or 'gt'"):
        parse_totaltext_mat(tmp_path / "other.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(AnnotationFormatError, match=r"junk\.mat: not a readable MATLAB file"):
        parse_totaltext_mat(tmp_path / "junk.mat")
    bad = np.empty((2, 6), dtype=object)
    bad[0] = row[0]
    bad[1] = ["x:", np.array([[1, 2, 3]]), "y:", np.array([[1, 2]]), "W", "h"]
    savemat(tmp_path / "bad.mat", {"polygt": bad})
    with pytest.raises(AnnotationFormatError, match=r"bad\.mat, row 2: x has 3 values but y has 2"):
        parse_totaltext_mat(tmp_path / "bad.mat")
    assert parse_totaltext_mat(tmp_path / "bad.mat", lenient=True).num_skipped == 1


# ---------------------------------------------------------------------------------------------- encodings
@pytest.mark.parametrize(
    "fmt, content",
    [
        ("icdar2013", '1 2 3 4 "caf\u00e9"\n'),
        ("icdar2015", "1,2,3,4,5,6,7,8,caf\u00e9\n"),
        ("mlt2017", "1,2,3,4,5,6,7,8,Latin,caf\u00e9\n"),
        ("polygon", "1,2,3,4,5,6,caf\u00e9\n"),
        ("totaltext_legacy", "x: [[1 2 3]], y: [[1 2 3]], ornt: [u'h'], transcriptions: [u'caf\u00e9']\n"),
        ("totaltext", "x: [[1 2 3]], y: [[1 2 3]], ornt: [u'h'], transcriptions: [u'caf\u00e9']\n"),
    ],
)
def test_non_utf8_names_the_file(tmp_path, fmt, content):
    path = tmp_path / "latin1_gt.txt"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(AnnotationFormatError, match=r"latin1_gt\.txt: not valid UTF-8"):
        parse_gt(path, fmt)
    with pytest.raises(AnnotationFormatError, match=r"member\.txt: not valid UTF-8"):
        parse_gt(content.encode("latin-1"), fmt, name="some.zip:member.txt")
    # The same content in UTF-8, with a BOM and CRLF, parses to the accented word.
    words = parse_gt(("\ufeff" + content.replace("\n", "\r\n")).encode("utf-8"), fmt, name="ok.txt")
    assert words[0]["text"] == "caf\u00e9"
    assert parse_gt(content, fmt, is_text=True)[0]["text"] == "caf\u00e9"


# ---------------------------------------------------------------------------------------------- SynthText
def _cells(items):
    out = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        out[0, i] = item
    return out


def _write_synthtext(path, mismatch=False):
    rng = np.random.default_rng(0)
    bb0 = rng.uniform(-5, 120, size=(2, 4, 5))
    bb1 = rng.uniform(0, 60, size=(2, 4))  # a single word: 2x4
    bb2 = rng.uniform(0, 60, size=(2, 4, 3 if mismatch else 2))
    savemat(
        path,
        {
            "imnames": _cells([np.array(["8/ballet_106_0.jpg"]), np.array(["8/ballet_106_1.jpg"]),
                               np.array(["200/zoo_3_0.jpg"])]),
            "wordBB": _cells([bb0, bb1, bb2]),
            # Space-padded strings, words across lines ("Lines:\nI lost" is three words).
            "txt": _cells([np.array(["Lines:\nI lost", "Kevin  ", "will   "]), np.array(["Hello"]),
                           np.array(["two words"])]),
            "charBB": _cells([np.zeros((2, 4, 1))] * 3),
        },
    )
    return bb0, bb1, bb2


def test_synthtext_gt_mat(tmp_path):
    bb0, bb1, bb2 = _write_synthtext(tmp_path / "gt.mat")
    gt = parse_synthtext_gt(tmp_path / "gt.mat")
    assert gt.imnames == ["8/ballet_106_0.jpg", "8/ballet_106_1.jpg", "200/zoo_3_0.jpg"]
    assert gt.offsets.tolist() == [0, 5, 6, 8]
    assert gt.words == ["Lines:", "I", "lost", "Kevin", "will", "Hello", "two", "words"]
    first = gt.annotations(0)
    assert [w["text"] for w in first] == ["Lines:", "I", "lost", "Kevin", "will"]
    # Raw boxes (corner k of word j is (x, y) = wordBB[:, k, j]), float32, not clipped.
    np.testing.assert_allclose(first[2]["polygon"], bb0[:, :, 2].T, rtol=1e-6)
    assert first[0]["polygon"].min() < 0
    np.testing.assert_allclose(gt.annotations(1)[0]["polygon"], bb1.T, rtol=1e-6)
    assert not any(w["ignore"] for i in range(len(gt)) for w in gt.annotations(i))


def test_synthtext_word_count_mismatch(tmp_path, caplog):
    _write_synthtext(tmp_path / "gt.mat", mismatch=True)
    with pytest.raises(AnnotationFormatError, match=r"gt\.mat: image 2 \('200/zoo_3_0\.jpg'\): txt holds 2 words"):
        parse_synthtext_gt(tmp_path / "gt.mat")
    gt = parse_synthtext_gt(tmp_path / "gt.mat", lenient=True)
    assert len(gt) == 2 and gt.num_skipped == 1 and "zoo_3_0" in caplog.text


def test_synthtext_cache(tmp_path, monkeypatch):
    import dld.data.formats_synthtext as fs

    gt_mat = tmp_path / "gt.mat"
    _write_synthtext(gt_mat)
    first = load_synthtext_gt(gt_mat, cache_dir=tmp_path / "cache")
    cache = synthtext_cache_path(gt_mat, tmp_path / "cache")
    assert cache.endswith(".npz") and (tmp_path / "cache").is_dir()

    def fail(*args, **kwargs):
        raise AssertionError("gt.mat parsed again although the cache is current")

    monkeypatch.setattr(fs, "parse_synthtext_gt", fail)
    again = load_synthtext_gt(gt_mat, cache_dir=tmp_path / "cache")
    assert again.imnames == first.imnames and again.words == first.words
    np.testing.assert_array_equal(again.boxes, first.boxes)
    np.testing.assert_array_equal(again.offsets, first.offsets)
    monkeypatch.undo()

    # A changed gt.mat (size or mtime) is converted again; the default cache lives next to gt.mat.
    _write_synthtext(gt_mat, mismatch=True)
    with pytest.raises(AnnotationFormatError, match="txt holds 2 words"):
        load_synthtext_gt(gt_mat, cache_dir=tmp_path / "cache")
    lenient = load_synthtext_gt(gt_mat, lenient=True)
    assert len(lenient) == 2 and (tmp_path / "gt.dld-cache.npz").is_file()
    # A strict call does not trust a cache that was built by skipping images.
    with pytest.raises(AnnotationFormatError):
        load_synthtext_gt(gt_mat)
