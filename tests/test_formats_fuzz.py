"""Property tests of the text parsers: random valid files round-trip; one malformed line is reported exactly."""
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dld.data.formats import MLT_SCRIPTS, AnnotationFormatError, parse_gt
from dld.data.formats_base import parse_number

FORMATS = ["icdar2013", "icdar2015", "mlt2017", "polygon", "totaltext_legacy"]
NAME = "fuzz/gt_img_7.txt"
SETTINGS = dict(derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Record = Tuple[List[str], Dict[str, Any]]  # physical lines, expected word

_coord = st.integers(-10_000, 10_000)
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12)
# A token that is neither a number nor blank, and holds no separator of any format.
_garbage = st.text(
    st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), blacklist_characters=',"[]\r\n\x85'),
    min_size=1,
    max_size=8,
).filter(lambda s: parse_number(s) is None and s.strip() == s and s != "x:")


def _word(points, text: str, ignore: bool) -> Dict[str, Any]:
    return {"polygon": np.asarray(points, dtype=np.float64).reshape(-1, 2), "text": text, "ignore": ignore}


# ---------------------------------------------------------------------------------------------- valid records
@st.composite
def _valid(draw, fmt: str) -> Record:
    text = draw(st.one_of(_text, st.sampled_from(["###", "#", "a,b", 'say "hi"', "back\\slash", "2015"])))
    if fmt == "icdar2013":
        left, top, right, bottom = (draw(_coord) for _ in range(4))
        sep = draw(st.sampled_from([" ", ", ", ",", "  "]))
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        line = sep.join(map(str, (left, top, right, bottom))) + f'{sep}"{escaped}"'
        return [line], _word([left, top, right, top, right, bottom, left, bottom], text, False)
    if fmt in ("icdar2015", "mlt2017", "polygon"):
        num_points = 4 if fmt != "polygon" else draw(st.integers(3, 10))
        coords = [draw(_coord) for _ in range(2 * num_points)]
        if fmt == "polygon":  # the format cannot tell "1,2,x" text from coordinates: keep text unambiguous
            assume("," not in text or parse_number(text.split(",")[0]) is None)
        fields = list(map(str, coords))
        if fmt == "mlt2017":
            fields.append(draw(st.sampled_from(sorted(MLT_SCRIPTS))))
        ignore = text == "###" if fmt != "polygon" else text in ("###", "#")
        return [",".join(fields + [text])], _word(coords, text, ignore)
    # totaltext_legacy: the coordinate lists may wrap onto continuation lines.
    num_points = draw(st.integers(3, 12))
    xs = [draw(_coord) for _ in range(num_points)]
    ys = [draw(_coord) for _ in range(num_points)]
    ornt = draw(st.sampled_from("chm#"))
    x_breaks = draw(st.sets(st.integers(1, num_points - 1), max_size=2))
    y_breaks = draw(st.sets(st.integers(1, num_points - 1), max_size=2))

    def numbers(values, breaks):
        return "".join(("\n   " if i in breaks else " " if i else "") + str(v) for i, v in enumerate(values))

    record = (
        f"x: [[{numbers(xs, x_breaks)}]], y: [[{numbers(ys, y_breaks)}]], ornt: [u'{ornt}'], "
        f"transcriptions: [u{text!r}]"
    )
    return record.split("\n"), _word(np.stack([xs, ys], axis=1), text, text in ("#", "###"))


# ---------------------------------------------------------------------------------------------- malformed lines
@st.composite
def _malformed(draw, fmt: str) -> str:
    kind = draw(st.sampled_from(["garbage", "count", "coordinate", "quote"]))
    if fmt == "icdar2013":
        coords = [str(draw(_coord)) for _ in range(4)]
        sep = draw(st.sampled_from([" ", ", "]))
        if kind == "garbage":
            return draw(_garbage)
        if kind == "count":
            n = draw(st.sampled_from([0, 1, 2, 3, 5, 6]))
            coords = [str(draw(_coord)) for _ in range(n)]
        elif kind == "coordinate":
            coords[draw(st.integers(0, 3))] = draw(_garbage)
        word = draw(_text).replace("\\", "").replace('"', "")
        closing = "" if kind == "quote" else '"'
        return sep.join(coords + [f'"{word}{closing}'])
    if fmt in ("icdar2015", "mlt2017"):
        n = 8
        coords = [str(draw(_coord)) for _ in range(n)]
        tail = ["Latin"] if fmt == "mlt2017" else []
        if kind == "garbage":
            return draw(_garbage)
        if kind == "count":  # no transcription: too few fields
            return ",".join((coords + tail)[: draw(st.integers(1, n + len(tail)))])
        if kind == "quote":  # a coordinate missing
            return ",".join(coords[:-1] + tail + ["word"])
        coords[draw(st.integers(0, n - 1))] = draw(_garbage)
        return ",".join(coords + tail + ["word"])
    if fmt == "polygon":
        if kind == "garbage":
            return draw(_garbage)
        if kind in ("count", "quote"):  # fewer than 3 points before the text, or numbers only
            k = draw(st.integers(0, 5))
            coords = [str(draw(_coord)) for _ in range(k)]
            return ",".join(coords + [draw(_garbage)]) if kind == "count" else ",".join(coords[:2] + ["1"] * 4)
        coords = [str(draw(_coord)) for _ in range(8)]
        coords[draw(st.integers(0, 4))] = draw(_garbage)  # breaks the run of numbers before 3 points
        return ",".join(coords + ["word"])
    # totaltext_legacy: bad records start with "x:" (any other line would continue the record before it).
    xs = [str(draw(_coord)) for _ in range(4)]
    ys = [str(draw(_coord)) for _ in range(4)]
    text = "u'word'"
    if kind == "garbage":
        return "x: " + draw(_garbage)
    if kind == "count":
        ys = ys[: draw(st.integers(0, 3))]
    elif kind == "coordinate":
        xs[draw(st.integers(0, 3))] = draw(_garbage)
    else:
        text = "u'word"
    return f"x: [[{' '.join(xs)}]], y: [[{' '.join(ys)}]], ornt: [u'h'], transcriptions: [{text}]"


# ---------------------------------------------------------------------------------------------- file assembly
@st.composite
def _file(draw, fmt: str, with_bad_line: bool):
    records = draw(st.lists(_valid(fmt), min_size=0 if not with_bad_line else 1, max_size=6))
    bad_at = draw(st.integers(0, len(records))) if with_bad_line else None
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines: List[str] = []
    bad_lineno = None
    for i in range(len(records) + 1):
        if i == bad_at:
            lines.append(draw(_malformed(fmt)))
            bad_lineno = len(lines)
        if i < len(records):
            if draw(st.booleans()) and draw(st.booleans()):
                lines.append(draw(st.sampled_from(["", "  "])))  # blank lines are skipped, but counted
            lines.extend(records[i][0])
    content = newline.join(lines) + (newline if lines and draw(st.booleans()) else "")
    data = (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + content.encode("utf-8")
    return data, [r[1] for r in records], bad_lineno


def _assert_words(parsed, expected):
    assert len(parsed) == len(expected)
    for p, e in zip(parsed, expected):
        np.testing.assert_array_equal(p["polygon"], e["polygon"])
        assert (p["text"], p["ignore"]) == (e["text"], e["ignore"])


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_valid_file_round_trips(fmt, data):
    content, expected, _ = data.draw(_file(fmt, with_bad_line=False))
    words = parse_gt(content, fmt, name=NAME)
    _assert_words(words, expected)
    assert words.num_skipped == 0


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_malformed_line_is_reported_or_skipped(fmt, data):
    content, expected, bad_lineno = data.draw(_file(fmt, with_bad_line=True))
    with pytest.raises(AnnotationFormatError) as e:
        parse_gt(content, fmt, name=NAME)
    assert str(e.value).startswith(f"{NAME}, line {bad_lineno}: "), str(e.value)
    words = parse_gt(content, fmt, lenient=True, name=NAME)
    assert words.num_skipped == 1
    _assert_words(words, expected)
