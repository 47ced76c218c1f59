"""
Export a text spotter for CPU serving: the spotter (a plain TextSpotterRCNN, or DLD's student) and, for DLD, the
selector, each traced through Detectron2's `TracingAdapter` into an ONNX graph whose data-dependent shapes (image
size, proposals, detections, words) stay dynamic. Each file carries the metadata the runner checks on load.
"""
import logging
import os
import uuid
import warnings
from typing import Dict, Optional

import torch
from detectron2.export import TracingAdapter
from torch import nn

from ..modeling.distill import DLDTextSpotter
from ..modeling.lowres import resize_images
from ..modeling.selector import make_thumbnails
from .metadata import SELECTOR_INPUTS, SELECTOR_OUTPUTS, SPOTTER_INPUTS, encode_metadata, model_metadata
from .traceable import SPOTTER_OUTPUTS, TraceableSelector, TraceableSpotter, flatten_outputs

__all__ = ["cost_fit", "export_onnx", "SPOTTER_FILE", "SELECTOR_FILE", "DEFAULT_OPSET"]

logger = logging.getLogger(__name__)

SPOTTER_FILE = "spotter.onnx"
SELECTOR_FILE = "selector.onnx"
# RoIAlign with aligned=True (half_pixel) needs opset 16.
DEFAULT_OPSET = 17


def _trace_to_onnx(module: nn.Module, example: torch.Tensor, path: str, input_names, output_names, dynamic_axes, opset):
    adapter = TracingAdapter(module, (example,), inference_func=lambda m, x: tuple(_as_tuple(m(x))))
    adapter.eval()  # torch.onnx.export restores the adapter's mode afterwards, recursively: it must be eval
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        torch.onnx.export(
            adapter,
            adapter.flattened_inputs,
            path,
            dynamo=False,
            opset_version=opset,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
        )


def _as_tuple(outputs):
    if isinstance(outputs, torch.Tensor):
        return (outputs,)
    return flatten_outputs(outputs)


def cost_fit(model: DLDTextSpotter) -> Dict:
    """
    The selector's cost as a function of the student's padded input size, for a runner without the eager model:
    "power" (s ** 1.5) needs nothing; "flops"/"backbone" GFLOPs are fvcore counts of convolutions over the padded
    input plus a per-RoI part that does not depend on it, so G(H, W) = area_coef · H · W + const, fitted on two
    sizes (within about 1e-4 of the count elsewhere).
    """
    table = model.flops_table
    if table.cost_type == "power":
        return {"cost_type": "power"}
    count = table.backbone_gflops if table.cost_type == "backbone" else table.student_gflops
    d = max(table.size_divisibility, 1)
    small, large = (2 * d, 2 * d), (12 * d, 12 * d)
    g_small, g_large = count(*small, 1.0), count(*large, 1.0)
    coef = (g_large - g_small) / (large[0] * large[1] - small[0] * small[1])
    return {"cost_type": table.cost_type, "area_coef": coef, "const": g_small - coef * small[0] * small[1],
            "size_divisibility": d}


def _write_metadata(path: str, meta: Dict) -> None:
    import onnx

    proto = onnx.load(path)
    del proto.metadata_props[:]
    for key, value in encode_metadata(meta).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, path)


@torch.no_grad()
def export_onnx(
    model: nn.Module,
    cfg,
    output_dir: str,
    sample: Dict,
    opset: int = DEFAULT_OPSET,
) -> Dict[str, str]:
    """
    Export `model` (TextSpotterRCNN or DLDTextSpotter, in eval mode, on the CPU) to `output_dir`: spotter.onnx,
    plus selector.onnx for DLD. `sample` is one input dict as the test mapper makes it ("image": [3, H, W] in
    INPUT.FORMAT); it only fixes the trace's path, not its shapes: an image with words, so that every head runs.

    Returns:
        role ("spotter", "selector") → path of the written file.
    """
    is_dld = isinstance(model, DLDTextSpotter)
    spotter = model.student if is_dld else model
    model.eval()
    os.makedirs(output_dir, exist_ok=True)
    export_id = uuid.uuid4().hex
    images = spotter.preprocess_image([sample])
    scale = model.scales[0] if is_dld else spotter.fixed_scale
    net = resize_images(images, [scale], spotter.backbone.size_divisibility) if scale != 1.0 else images
    h, w = net.image_sizes[0]
    example = net.tensor[:, :, :h, :w].contiguous()

    paths = {"spotter": os.path.join(output_dir, SPOTTER_FILE)}
    dynamic = {"image": {2: "height", 3: "width"}, **{k: {0: "words"} for k in SPOTTER_OUTPUTS}}
    _trace_to_onnx(TraceableSpotter(spotter).eval(), example, paths["spotter"], SPOTTER_INPUTS, SPOTTER_OUTPUTS, dynamic, opset)
    spotter_meta = model_metadata(cfg, "spotter", export_id, SPOTTER_INPUTS, SPOTTER_OUTPUTS)
    if is_dld:
        spotter_meta["cost_fit"] = cost_fit(model)
    _write_metadata(paths["spotter"], spotter_meta)
    if is_dld:
        selector = model.selector
        thumb = make_thumbnails(images.tensor, images.image_sizes, selector.input_size, selector.size_divisibility)[0]
        paths["selector"] = os.path.join(output_dir, SELECTOR_FILE)
        _trace_to_onnx(
            TraceableSelector(selector).eval(), thumb, paths["selector"], SELECTOR_INPUTS, SELECTOR_OUTPUTS,
            {"thumbnail": {2: "height", 3: "width"}}, opset,
        )
        _write_metadata(
            paths["selector"], model_metadata(cfg, "selector", export_id, SELECTOR_INPUTS, SELECTOR_OUTPUTS)
        )
    logger.info("Exported %s", ", ".join(f"{k}: {v}" for k, v in paths.items()))
    return paths
