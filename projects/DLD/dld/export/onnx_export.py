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

__all__ = ["export_onnx", "SPOTTER_FILE", "SELECTOR_FILE", "DEFAULT_OPSET"]

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
    _write_metadata(paths["spotter"], model_metadata(cfg, "spotter", export_id, SPOTTER_INPUTS, SPOTTER_OUTPUTS))
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
