"""
Serve an exported spotter with onnxruntime, doing what the eager model does: normalise, (DLD) the selector's
thumbnail and decision, resize by the chosen scale, the spotter's graph, then the words mapped back to the
original image. Resizing and postprocessing are the eager model's own functions.
"""
import os
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from detectron2.data import transforms as T
from detectron2.structures import Boxes, ImageList, Instances

from ..data.charset import CharsetEncoder
from ..modeling.ctc import collapse_best_paths
from ..modeling.lowres import lowres_size, padded_size, resize_images
from ..modeling.postprocessing import text_postprocess
from ..modeling.selector import biased_choice, make_thumbnails
from .metadata import ExportMismatchError, check_metadata, check_pair, decode_metadata
from .onnx_export import SELECTOR_FILE, SPOTTER_FILE

__all__ = ["OnnxTextSpotter", "expected_metadata", "fitted_normalized_cost"]


def fitted_normalized_cost(fit: Mapping[str, Any], scales: Sequence[float]) -> Callable[[int, int], torch.Tensor]:
    """(h, w) → [K] T_k / T_teacher from the export's cost fit (:func:`dld.export.onnx_export.cost_fit`)."""
    if fit["cost_type"] == "power":
        cost = torch.tensor([s**1.5 for s in scales], dtype=torch.float32)
        return lambda height, width: cost

    def gflops(height: int, width: int, scale: float) -> float:
        h, w = padded_size(*lowres_size(height, width, scale), fit["size_divisibility"])
        return fit["area_coef"] * h * w + fit["const"]

    def normalized(height: int, width: int) -> torch.Tensor:
        full = gflops(height, width, 1.0)
        return torch.tensor([gflops(height, width, s) / full for s in scales], dtype=torch.float32)

    return normalized


def expected_metadata(cfg) -> Dict[str, Any]:
    """What a config says an export of its model must hold: scales, charset (for :class:`OnnxTextSpotter`)."""
    head = cfg.MODEL.TEXT_HEAD
    is_dld = cfg.MODEL.META_ARCHITECTURE == "DLDTextSpotter"
    return {
        "scales": [float(s) for s in cfg.MODEL.DLD.SCALES] if is_dld else None,
        "charset": head.CHARSET,
        "case_sensitive": bool(head.CASE_SENSITIVE),
        "max_length": int(head.MAX_LENGTH),
        "decoder": head.DECODER,
    }


def _session(path: str, threads: int):
    import onnxruntime as ort

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist: export the model with tools/export_model.py")
    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    # No busy-waiting of idle worker threads: the selector's and the spotter's sessions run one after the other
    # and would otherwise spin against each other (and against anything else) on a few cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class OnnxTextSpotter:
    """
    The exported model of one directory (spotter.onnx, and selector.onnx for DLD), run with onnxruntime.

    Call it like the eager model on input dicts of the test mapper ("image" [3, H, W] in INPUT.FORMAT, and
    "height"/"width" of the original image), or on one image array with :meth:`predict_image`. Outputs are the
    eager model's: per image `{"instances", "selected_scale", "inference_time_s"}`, words in original-image
    coordinates. Images run one by one (each has its own scale).

    Args:
        directory: where tools/export_model.py wrote the files.
        expected: keys the files must hold (e.g. from :func:`expected_metadata`): a mismatch is an error.
        fixed_scale: a plain spotter's test scale, instead of the exported one (DLD: not allowed).
        cost_bias: DLD's test-time cost bias λ, instead of the exported one; λ > 0 needs `normalized_cost`.
        normalized_cost: (h, w) → [K] normalised cost of each candidate scale (the eager model's
            `flops_table.normalized_cost`); None: the export's fitted cost (:func:`fitted_normalized_cost`).
        threads: onnxruntime intra-op threads (0: its default).
    """

    def __init__(
        self,
        directory: str,
        *,
        expected: Optional[Mapping[str, Any]] = None,
        fixed_scale: Optional[float] = None,
        cost_bias: Optional[float] = None,
        normalized_cost: Optional[Callable[[int, int], torch.Tensor]] = None,
        threads: int = 0,
    ):
        expected = {k: v for k, v in (expected or {}).items() if v is not None}
        spotter_path = os.path.join(directory, SPOTTER_FILE)
        self.spotter = _session(spotter_path, threads)
        self.meta = decode_metadata(self.spotter.get_modelmeta().custom_metadata_map, spotter_path)
        check_metadata(
            self.meta, spotter_path, "spotter",
            [i.name for i in self.spotter.get_inputs()], [o.name for o in self.spotter.get_outputs()], expected,
        )
        self.is_dld = self.meta["meta_architecture"] == "DLDTextSpotter"
        self.selector = None
        if self.is_dld:
            selector_path = os.path.join(directory, SELECTOR_FILE)
            self.selector = _session(selector_path, threads)
            selector_meta = decode_metadata(self.selector.get_modelmeta().custom_metadata_map, selector_path)
            check_metadata(
                selector_meta, selector_path, "selector",
                [i.name for i in self.selector.get_inputs()], [o.name for o in self.selector.get_outputs()],
                expected,
            )
            check_pair(self.meta, selector_meta, directory)
            if fixed_scale is not None:
                raise ValueError("fixed_scale is a plain spotter's: a DLD export picks each image's scale")
        self.scales = tuple(float(s) for s in self.meta["scales"])
        if fixed_scale is not None:
            if not fixed_scale > 0:
                raise ValueError(f"fixed_scale must be positive, got {fixed_scale}")
            self.scales = (float(fixed_scale),)
        self.cost_bias = float(self.meta["test_cost_bias"] if cost_bias is None else cost_bias)
        if self.cost_bias < 0:
            raise ValueError(f"cost_bias must be >= 0, got {self.cost_bias}")
        if normalized_cost is None and "cost_fit" in self.meta:
            normalized_cost = fitted_normalized_cost(self.meta["cost_fit"], self.scales)
        if self.cost_bias > 0 and normalized_cost is None:
            raise ValueError(f"a cost bias of {self.cost_bias} needs normalized_cost (each scale's T_k / T_teacher)")
        self.normalized_cost = normalized_cost
        self.encoder = CharsetEncoder(self.meta["charset"], self.meta["max_length"], self.meta["case_sensitive"])
        self.pixel_mean = torch.tensor(self.meta["pixel_mean"], dtype=torch.float32).view(-1, 1, 1)
        self.pixel_std = torch.tensor(self.meta["pixel_std"], dtype=torch.float32).view(-1, 1, 1)
        self.size_divisibility = 32
        self.resize = T.ResizeShortestEdge(self.meta["min_size_test"], self.meta["max_size_test"], "choice")

    @property
    def device(self) -> torch.device:
        """Where the runner's inputs and outputs live (onnxruntime runs on the CPU)."""
        return torch.device("cpu")

    # ------------------------------------------------------------------------------------------------ steps
    def preprocess(self, inputs: Dict) -> ImageList:
        """The eager `preprocess_image` of one input dict: normalised and padded."""
        image = (inputs["image"].to(torch.float32) - self.pixel_mean) / self.pixel_std
        return ImageList.from_tensors([image], self.size_divisibility)

    def choose_scale(self, images: ImageList) -> float:
        """The selector's decision (DLD) or the fixed scale."""
        if not self.is_dld:
            return self.scales[0]
        thumb = make_thumbnails(images.tensor, images.image_sizes, self.meta["selector_input_size"], 32)[0]
        logits = torch.from_numpy(self.selector.run(None, {"thumbnail": thumb.numpy()})[0])
        if logits.shape[-1] != len(self.scales):
            raise ExportMismatchError(
                f"selector.onnx gives {logits.shape[-1]} logits, its metadata names {len(self.scales)} scales"
            )
        cost = None
        if self.cost_bias > 0:
            h, w = images.image_sizes[0]
            cost = torch.as_tensor(self.normalized_cost(h, w), dtype=torch.float32)[None]
        return self.scales[int(biased_choice(logits, cost, self.cost_bias)[0])]

    def spot(self, images: ImageList, scale: float) -> Instances:
        """The spotter's graph at `scale`: raw results in the coordinates of the resized input."""
        net = resize_images(images, [scale], self.size_divisibility) if scale != 1.0 else images
        h, w = net.image_sizes[0]
        values = self.spotter.run(None, {"image": np.ascontiguousarray(net.tensor[:, :, :h, :w].numpy())})
        out = dict(zip(self.meta["output_names"], (torch.from_numpy(v) for v in values)))
        result = Instances((int(h), int(w)))
        result.pred_boxes = Boxes(out["pred_boxes"])
        result.scores = out["scores"]
        result.pred_classes = out["pred_classes"]
        result.pred_masks = out["pred_masks"]
        ids, log_probs = out["text_ids"], out["text_log_probs"]
        if self.meta["decoder"] == "ctc":
            columns = ids.shape[1]
            ids = collapse_best_paths(ids, self.encoder.num_steps)
            result.text_scores = torch.exp(log_probs / columns) if len(ids) else log_probs
        else:
            from ..modeling.text_head import _sequence_lengths

            result.text_scores = torch.exp(log_probs / _sequence_lengths(ids).to(log_probs.dtype)) if len(ids) else log_probs
        result.pred_text_ids = ids
        return result

    # ------------------------------------------------------------------------------------------------ API
    def __call__(self, batched_inputs: Sequence[Dict]) -> List[Dict]:
        outputs = []
        for inputs in batched_inputs:
            start = time.perf_counter()
            images = self.preprocess(inputs)
            scale = self.choose_scale(images)
            raw = self.spot(images, scale)
            height, width = images.image_sizes[0]
            height, width = inputs.get("height", height), inputs.get("width", width)
            words = text_postprocess(
                raw, height, width, self.encoder, self.meta["mask_threshold"], self.meta["polygon_epsilon"]
            )
            outputs.append(
                {"instances": words, "selected_scale": scale, "inference_time_s": time.perf_counter() - start}
            )
        return outputs

    def predict_image(self, image: np.ndarray) -> Dict:
        """One [H, W, 3] uint8 image in the exported INPUT.FORMAT (BGR by default), resized as at test time."""
        height, width = image.shape[:2]
        resized = self.resize.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
        return self([{"image": tensor, "height": height, "width": width}])[0]
