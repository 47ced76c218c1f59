"""ONNX export of a spotter and of DLD's student and selector, served with onnxruntime as the eager model runs."""
import json

import pytest
import torch
from detectron2.modeling import build_model

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from dld.export import (  # noqa: E402
    ExportMismatchError,
    OnnxTextSpotter,
    compare_outputs,
    expected_metadata,
    export_onnx,
    outputs_agree,
)
from dld.export.metadata import decode_metadata  # noqa: E402
from dld.modeling import TextSpotterRCNN  # noqa: E402


def _inputs():
    """Three random images of different sizes (and word counts), outputs asked at twice their size."""
    g = torch.Generator().manual_seed(0)
    return [
        {"image": torch.rand(3, h, w, generator=g) * 255, "height": 2 * h, "width": 2 * w}
        for h, w in [(96, 128), (160, 224), (128, 96)]
    ]


def _detecting(cfg):
    """Random weights that detect words: a low score threshold and few proposals keep the test fast."""
    cfg = cfg.clone()
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.5
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 30
    cfg.TEST.DETECTIONS_PER_IMAGE = 30
    return cfg


@torch.no_grad()
def _eager(model, inputs):
    # The FLOPs count (fvcore, once per size) is not what is compared here, and costs seconds per size.
    table = model.flops_table
    table.student_gflops = lambda *args, **kwargs: 0.0
    table.output_cost = lambda *args, **kwargs: {}
    if hasattr(model, "selector_gflops"):
        model.selector_gflops = lambda *args, **kwargs: 0.0
    # One image per call: GroupNorm sees the batch's padding, so a batch of several sizes reads differently.
    return [model([x])[0] for x in inputs]


@pytest.fixture(scope="module")
def exported_spotter(tmp_path_factory):
    from detectron2.config import get_cfg

    from conftest import REPO_ROOT
    from dld import add_dld_config

    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.merge_from_file(str(REPO_ROOT / "configs/synth/text_spotter_R_18_FPN_synth.yaml"))
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.TEXT_HEAD.CHANNELS = 32
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 64
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 32
    cfg.MODEL.TEXT_HEAD.MAX_LENGTH = 12
    cfg = _detecting(cfg)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    directory = tmp_path_factory.mktemp("spotter")
    inputs = _inputs()
    # Traced on the image with the fewest words: the others have more, and another size.
    export_onnx(model, cfg, str(directory), inputs[2])
    return cfg, model, str(directory), inputs


def test_exported_spotter_reads_as_the_eager_one_on_other_sizes_and_word_counts(exported_spotter):
    cfg, model, directory, inputs = exported_spotter
    eager = _eager(model, inputs)
    counts = [len(o["instances"]) for o in eager]
    # The test means something only if the traced image has fewer words than the others and another size.
    assert counts[2] < counts[0] and counts[2] < counts[1] and counts[2] > 0
    exported = OnnxTextSpotter(directory, expected=expected_metadata(cfg), threads=1)(inputs)
    for row, out, x in zip(compare_outputs(eager, exported), exported, inputs):
        assert outputs_agree(row), row
        assert out["instances"].image_size == (x["height"], x["width"])


def test_exported_graph_keeps_data_dependent_shapes_dynamic(exported_spotter):
    import onnxruntime as ort

    _, _, directory, _ = exported_spotter
    session = ort.InferenceSession(f"{directory}/spotter.onnx", providers=["CPUExecutionProvider"])
    image = session.get_inputs()[0]
    assert isinstance(image.shape[2], str) and isinstance(image.shape[3], str)
    for output in session.get_outputs():
        assert isinstance(output.shape[0], str), f"{output.name} has a fixed number of words: {output.shape}"


def test_image_without_words_and_fixed_scale(exported_spotter):
    cfg, model, directory, inputs = exported_spotter
    blank = {"image": torch.zeros(3, 64, 64), "height": 64, "width": 64}
    out = OnnxTextSpotter(directory, threads=1)([blank])[0]
    assert len(out["instances"]) == len(_eager(model, [blank])[0]["instances"])
    # The plain spotter at another test scale: the same graph, the image resized as TEST.FIXED_SCALE does.
    cfg = cfg.clone()
    cfg.TEST.FIXED_SCALE = 0.5
    scaled = TextSpotterRCNN(cfg).eval()
    scaled.load_state_dict(model.state_dict())
    runner = OnnxTextSpotter(directory, fixed_scale=0.5, threads=1)
    for row in compare_outputs(_eager(scaled, inputs[:2]), runner(inputs[:2])):
        assert outputs_agree(row), row
        assert row["scale_exported"] == 0.5


@pytest.fixture(scope="module")
def exported_dld(tmp_path_factory):
    from detectron2.config import get_cfg

    from conftest import REPO_ROOT
    from dld import add_dld_config

    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.merge_from_file(str(REPO_ROOT / "configs/synth/dld_R_18_FPN_synth_gamma0.1.yaml"))
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.TEXT_HEAD.CHANNELS = 32
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 64
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 32
    cfg.MODEL.TEXT_HEAD.MAX_LENGTH = 12
    cfg.MODEL.DLD.SCALES = (0.8, 0.5)
    cfg.MODEL.DLD.SELECTOR.BASE_CHANNELS = 8
    cfg.MODEL.DLD.SELECTOR.INPUT_SIZE = 64
    cfg.MODEL.DLD.COST.TYPE = "power"
    cfg.MODEL.DLD.TEACHER.WEIGHTS = ""
    cfg = _detecting(cfg)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    inputs = _inputs()
    with torch.no_grad():  # a random selector whose decision boundary falls between the test images
        images = model.student.preprocess_image(inputs)
        logits = model.selector.predict_logits(images.tensor, images.image_sizes)
        margin = logits[:, 0] - logits[:, 1]
        model.selector.fc.bias[0] -= float(margin.median())
    directory = tmp_path_factory.mktemp("dld")
    export_onnx(model, cfg, str(directory), inputs[0])
    return cfg, model, str(directory), inputs


def test_exported_dld_selects_and_reads_as_the_eager_model(exported_dld):
    cfg, model, directory, inputs = exported_dld
    eager = _eager(model, inputs)
    exported = OnnxTextSpotter(directory, expected=expected_metadata(cfg), threads=1)(inputs)
    rows = compare_outputs(eager, exported)
    for row in rows:
        assert outputs_agree(row), row
    assert len({row["scale_eager"] for row in rows}) == 2, "the test wants both scales chosen"
    assert any(row["words_eager"] > 0 for row in rows)


# ---------------------------------------------------------------------------------------------- bad input
def _rewrite_metadata(path, **changes):
    import onnx

    proto = onnx.load(path)
    for entry in proto.metadata_props:
        key = entry.key[len("dld."):]
        if key in changes:
            entry.value = json.dumps(changes[key])
    onnx.save(proto, path)


def _copy(directory, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(directory, target)
    return target


def test_file_of_another_version_is_refused(exported_spotter, tmp_path):
    target = _copy(exported_spotter[2], tmp_path)
    _rewrite_metadata(str(target / "spotter.onnx"), format_version=0)
    with pytest.raises(ExportMismatchError, match="export format version"):
        OnnxTextSpotter(str(target))


def test_file_of_another_model_names_charset_and_scales(exported_dld, tmp_path):
    cfg = exported_dld[0].clone()
    cfg.MODEL.TEXT_HEAD.CASE_SENSITIVE = True
    cfg.MODEL.DLD.SCALES = (0.7, 0.4)
    with pytest.raises(ExportMismatchError, match="scales.*case_sensitive|case_sensitive.*scales") as info:
        OnnxTextSpotter(exported_dld[2], expected=expected_metadata(cfg))
    assert "spotter.onnx" in str(info.value)


def test_selector_of_another_export_is_refused(exported_dld, tmp_path):
    target = _copy(exported_dld[2], tmp_path)
    _rewrite_metadata(str(target / "selector.onnx"), export_id="another", scales=[0.9, 0.6])
    with pytest.raises(ExportMismatchError, match="do not belong together.*export id.*scales"):
        OnnxTextSpotter(str(target))


def test_onnx_file_without_metadata_or_with_other_inputs_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["pixels"], ["pred_boxes"])],
        "other",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3, None, None])],
        [helper.make_tensor_value_info("pred_boxes", TensorProto.FLOAT, [1, 3, None, None])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "spotter.onnx"))
    with pytest.raises(ExportMismatchError, match="no DLD export metadata"):
        OnnxTextSpotter(str(tmp_path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "dld.format_version", "1"
    entry = model.metadata_props.add()
    entry.key, entry.value = "dld.role", json.dumps("spotter")
    onnx.save(model, str(tmp_path / "spotter.onnx"))
    with pytest.raises(ExportMismatchError, match="graph input names.*pixels"):
        OnnxTextSpotter(str(tmp_path))
    assert decode_metadata({"dld.role": '"spotter"'}, "x") == {"role": "spotter"}


def test_exported_dld_with_a_test_time_cost_bias_selects_as_the_eager_model(exported_dld):
    cfg, model, directory, inputs = exported_dld
    model.selector.test_cost_bias = 1e4
    try:
        eager = _eager(model, inputs)
    finally:
        model.selector.test_cost_bias = 0.0
    exported = OnnxTextSpotter(directory, cost_bias=1e4, threads=1)(inputs)
    assert [o["selected_scale"] for o in exported] == [o["selected_scale"] for o in eager] == [0.5] * 3


def test_fitted_cost_matches_the_flops_table(small_cfg):
    from dld.export.onnx_export import cost_fit
    from dld.export.runner import fitted_normalized_cost

    cfg = small_cfg.clone()
    cfg.MODEL.META_ARCHITECTURE = "DLDTextSpotter"
    cfg.MODEL.DLD.SCALES = (0.8, 0.5)
    cfg.MODEL.DLD.SELECTOR.BASE_CHANNELS = 8
    cfg.MODEL.DLD.TEACHER.WEIGHTS = ""
    cfg.MODEL.DLD.COST.TYPE = "flops"
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    normalized = fitted_normalized_cost(cost_fit(model), model.scales)
    for h, w in [(100, 150), (200, 120)]:
        assert torch.allclose(normalized(h, w), model.flops_table.normalized_cost(h, w), rtol=1e-3)


def test_predict_image_resizes_as_the_test_mapper(exported_spotter):
    import numpy as np

    cfg, model, directory, _ = exported_spotter
    image = (np.random.default_rng(0).random((200, 300, 3)) * 255).astype(np.uint8)
    out = OnnxTextSpotter(directory, threads=1).predict_image(image)
    assert out["instances"].image_size == (200, 300) and out["selected_scale"] == 1.0


def test_masked_feature_reader_is_refused_with_a_clear_error(small_cfg, tmp_path):
    torch.manual_seed(0)
    model = build_model(small_cfg).eval()  # the paper's reading path: masked P2 features
    sample = {"image": torch.rand(3, 64, 64) * 255}
    with pytest.raises(NotImplementedError, match="IN_FEATURE 'image'"):
        export_onnx(model, small_cfg, str(tmp_path), sample)


def test_image_reader_with_the_attention_decoder_exports_too(exported_spotter, tmp_path):
    cfg = exported_spotter[0].clone()
    cfg.MODEL.TEXT_HEAD.DECODER = "attention"
    cfg.MODEL.TEXT_HEAD.CTC_LOSS_WEIGHT = 0.0
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    inputs = _inputs()
    export_onnx(model, cfg, str(tmp_path), inputs[2])
    rows = compare_outputs(_eager(model, inputs), OnnxTextSpotter(str(tmp_path), threads=1)(inputs))
    assert all(outputs_agree(row) for row in rows), rows
    assert sum(row["words_eager"] for row in rows) > 0
