"""
Property tests over the three places where outside input enters: the annotation parsers (any bytes), the mapper
(any mix of good and bad words) and the evaluator (any predictions and ground truth). None may crash with
anything but its documented error, and none may lose a good annotation.
"""
import math
import uuid

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, BoxMode, Instances
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability_support import tiny_cfg

from dld.data import BadAnnotationError, TextDatasetMapper
from dld.data.formats import AnnotationFormatError, parse_gt
from dld.evaluation import TextSpottingEvaluator

SETTINGS = dict(derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
LINE_FORMATS = ["icdar2013", "icdar2015", "mlt2017", "polygon"]
ALL_FORMATS = LINE_FORMATS + ["totaltext_legacy", "totaltext", "totaltext_mat"]
MIN_POINTS = {"icdar2013": 4, "icdar2015": 4, "mlt2017": 4}

# ---------------------------------------------------------------------------------------------- parsers
# Tokens that the formats are made of, so that random files are often nearly valid.
_TOKEN = st.sampled_from(
    ["1", "-7", "3.5", "1e3", "nan", "inf", "-inf", "1e400", "0x10", ",", " ", "  ", '"', "\\", "'", "u'",
     "###", "#", "x:", "y:", "[[", "]]", "[", "]", "ornt:", "transcriptions:", "Latin", "\t", "\r", "é", "\u2028"]
)
_LINE = st.lists(st.one_of(_TOKEN, st.text(max_size=4)), max_size=30).map("".join)
_TEXT_FILE = st.lists(_LINE, max_size=8).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))
_ANY_FILE = st.one_of(_TEXT_FILE, st.binary(max_size=300), st.binary(max_size=200).map(lambda b: b"MATLAB 5.0" + b))


def _decodable(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("fmt", ALL_FORMATS)
@settings(max_examples=150, **SETTINGS)
@given(data=_ANY_FILE)
def test_parsers_return_valid_words_or_raise_their_own_error(fmt, data):
    for lenient in (False, True):
        try:
            words = parse_gt(data, fmt, lenient=lenient, name="gt_img_1.txt")
        except AnnotationFormatError as e:
            assert str(e).startswith("gt_img_1.txt")
            # Lenient parsing only gives up on a whole file: bytes that are not UTF-8 text or not a .mat file.
            assert not lenient or not _decodable(data) or fmt == "totaltext_mat" or data.startswith(b"MATLAB")
            continue
        for word in words:
            polygon = word["polygon"]
            assert polygon.dtype == np.float64 and polygon.ndim == 2 and polygon.shape[1] == 2
            assert len(polygon) >= MIN_POINTS.get(fmt, 3) and np.isfinite(polygon).all()
            assert isinstance(word["text"], str) and isinstance(word["ignore"], bool)
        assert words.num_skipped == 0 or lenient


@pytest.mark.parametrize("fmt", LINE_FORMATS)
@settings(max_examples=150, **SETTINGS)
@given(data=_TEXT_FILE)
def test_lenient_parsing_accounts_for_every_line(fmt, data):
    text = data.decode("utf-8")
    text = text[1:] if text.startswith("\ufeff") else text  # one byte-order mark, as utf-8-sig
    lines = [line for line in text.split("\n") if line.rstrip("\r").strip()]
    words = parse_gt(data, fmt, lenient=True)
    # Every non-blank line is a word or a counted skip, never silently lost.
    assert len(words) + words.num_skipped == len(lines)
    assert [w["line"] for w in words] == sorted({w["line"] for w in words})
    if words.num_skipped == 0:
        strict = parse_gt(data, fmt)
        assert [(w["text"], w["polygon"].tolist()) for w in strict] == [
            (w["text"], w["polygon"].tolist()) for w in words
        ]
    else:
        with pytest.raises(AnnotationFormatError, match=r", line \d+: "):
            parse_gt(data, fmt)


# ---------------------------------------------------------------------------------------------- mapper
HEIGHT, WIDTH = 96, 160


@st.composite
def _good_polygon(draw):
    """A rectangle or convex quad with at least 2 x 2 px inside the image (it may reach outside)."""
    x0 = draw(st.integers(-30, WIDTH - 3))
    y0 = draw(st.integers(-30, HEIGHT - 3))
    x1 = draw(st.integers(max(x0, 0) + 2, WIDTH + 30))
    y1 = draw(st.integers(max(y0, 0) + 2, HEIGHT + 30))
    skew = draw(st.integers(0, 1)) * (x1 - x0) / 4
    return [x0 + skew, y0, x1, y0, x1 - skew, y1, x0, y1]


_BAD_POLYGONS = st.one_of(
    st.lists(st.floats(0, 90), min_size=0, max_size=5).filter(lambda c: len(c) % 2 == 0),  # fewer than 3 points
    st.lists(st.floats(0, 90), min_size=7, max_size=7),  # odd number of coordinates
    _good_polygon().flatmap(lambda p: st.sampled_from([math.nan, math.inf, -math.inf]).flatmap(
        lambda bad: st.integers(0, 7).map(lambda i: p[:i] + [bad] + p[i + 1:]))),  # a non-finite coordinate
    st.tuples(st.integers(WIDTH, 10**6), st.integers(0, HEIGHT)).map(  # entirely outside
        lambda xy: [xy[0], xy[1], xy[0] + 20, xy[1], xy[0] + 20, xy[1] + 10, xy[0], xy[1] + 10]),
    st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(1, 40)).map(  # collinear: zero area
        lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[2], t[0] + 2 * t[2], t[1] + 2 * t[2]]),
)


@st.composite
def _words(draw):
    words = []
    for _ in range(draw(st.integers(0, 6))):
        good = draw(st.booleans())
        segmentation = draw(_good_polygon() if good else _BAD_POLYGONS)
        words.append(({"segmentation": [segmentation], "bbox": [0, 0, 1, 1], "bbox_mode": BoxMode.XYXY_ABS,
                       "category_id": 0, "text": draw(st.text(max_size=6)), "iscrowd": int(draw(st.booleans()))},
                      good))
    return words


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mapper") / "img_1.png"
    cv2.imwrite(str(path), np.full((HEIGHT, WIDTH, 3), 127, np.uint8))
    return str(path)


@pytest.fixture(scope="module")
def mappers():
    # Scale 1 (the image is 96 px high), no rotation: what goes in is what comes out.
    opts = ["INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MAX_SIZE_TRAIN", "1000", "INPUT.ROTATION_PROB", "0.0"]
    return {mode: TextDatasetMapper(tiny_cfg(opts + ["DATASETS.ON_BAD_ANNOTATION", mode]), is_train=True)
            for mode in ("error", "skip")}


@settings(max_examples=150, **SETTINGS)
@given(words=_words())
def test_mapper_keeps_every_good_word_and_names_the_first_bad_one(image_file, mappers, words):
    record = {"file_name": image_file, "height": HEIGHT, "width": WIDTH, "image_id": 1,
              "annotations": [w for w, _ in words]}
    cared = [(k, good) for k, (w, good) in enumerate(words) if not w["iscrowd"]]
    first_bad = next((k for k, good in cared if not good), None)

    instances = mappers["skip"](record)["instances"]
    assert len(instances) == sum(good for _, good in cared)
    boxes = instances.gt_boxes.tensor
    assert torch.isfinite(boxes).all() and (boxes[:, 2:] - boxes[:, :2] >= 1.0).all()
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= WIDTH).all() and (boxes[:, 1::2] <= HEIGHT).all()

    if first_bad is None:
        assert len(mappers["error"](record)["instances"]) == len(instances)
    else:
        with pytest.raises(BadAnnotationError, match=rf"^{image_file}, annotation {first_bad}: "):
            mappers["error"](record)


# ---------------------------------------------------------------------------------------------- evaluator
_COORD = st.one_of(st.floats(-50, 150), st.sampled_from([math.nan, math.inf, -math.inf, 1e30, -1e30]))
_POLYGON = st.lists(_COORD, max_size=12)
_WORD_TEXT = st.one_of(st.text(max_size=8), st.sampled_from(["###", "a,b", "line\nbreak", ""]))
_SCORE = st.one_of(st.floats(0, 1), st.sampled_from([math.nan, math.inf, -1.0]))


@st.composite
def _image_case(draw):
    gt = [{"segmentation": [draw(_POLYGON)], "bbox": [0, 0, 1, 1], "bbox_mode": BoxMode.XYXY_ABS,
           "category_id": 0, "text": draw(_WORD_TEXT), "iscrowd": int(draw(st.booleans()))}
          for _ in range(draw(st.integers(0, 4)))]
    n = draw(st.integers(0, 5))
    instances = Instances((100, 100))
    instances.scores = torch.tensor([draw(_SCORE) for _ in range(n)], dtype=torch.float32)
    instances.pred_polygons = [np.asarray(draw(_POLYGON), dtype=np.float64) for _ in range(n)]
    instances.pred_texts = [draw(_WORD_TEXT) for _ in range(n)]
    instances.text_scores = torch.tensor([draw(_SCORE) for _ in range(n)], dtype=torch.float32)
    instances.pred_boxes = Boxes(torch.tensor([[draw(_COORD) for _ in range(4)] for _ in range(n)]).reshape(-1, 4))
    return gt, instances


@pytest.fixture
def gt_holder():
    name = f"_reliability_eval_{uuid.uuid4().hex}"
    holder = {"records": []}
    DatasetCatalog.register(name, lambda: holder["records"])
    MetadataCatalog.get(name).set(thing_classes=["text"], evaluator_type="text")
    yield name, holder
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


@settings(max_examples=120, **SETTINGS)
@given(cases=st.lists(_image_case(), min_size=1, max_size=3), polygon_format=st.sampled_from(["quad", "polygon"]))
def test_evaluator_scores_any_input_within_bounds(gt_holder, tmp_path_factory, cases, polygon_format):
    name, holder = gt_holder
    holder["records"] = [{"file_name": f"img_{i}.jpg", "image_id": i, "height": 100, "width": 100,
                          "annotations": gt} for i, (gt, _) in enumerate(cases, start=1)]
    evaluator = TextSpottingEvaluator(name, output_dir=str(tmp_path_factory.mktemp("eval")), score_threshold=0.0,
                                      distributed=False, polygon_format=polygon_format)
    evaluator.reset()
    evaluator.process([{"image_id": i, "file_name": f"img_{i}.jpg"} for i in range(1, len(cases) + 1)],
                      [{"instances": inst} for _, inst in cases])
    metrics = evaluator.evaluate()["text"]
    for key, value in metrics.items():
        assert math.isfinite(value), key
        if "num_" in key:
            assert value >= 0 and float(value).is_integer(), key
        else:
            assert 0.0 <= value <= 1.0, key
    assert metrics["det_hmean"] >= metrics["e2e_hmean"] - 1e-9
