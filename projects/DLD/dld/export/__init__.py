"""
Deployment of a trained spotter: ONNX export of the spotter and DLD's selector (Detectron2's TracingAdapter), and a
runner that serves them with onnxruntime as the eager model runs (selector, resize, spotter, words mapped back).
onnx and onnxruntime are optional dependencies (requirements-export.txt), imported only when used.
"""
from .compare import compare_outputs, outputs_agree
from .metadata import EXPORT_FORMAT_VERSION, ExportMismatchError
from .onnx_export import SELECTOR_FILE, SPOTTER_FILE, export_onnx
from .runner import OnnxTextSpotter, expected_metadata

__all__ = [
    "EXPORT_FORMAT_VERSION",
    "ExportMismatchError",
    "OnnxTextSpotter",
    "SELECTOR_FILE",
    "SPOTTER_FILE",
    "compare_outputs",
    "expected_metadata",
    "export_onnx",
    "outputs_agree",
]
