"""
What an exported ONNX file says about itself (its `metadata_props`), and the checks a runner makes on load: a
file from another model, another export or another version of the project is refused with an error that names
what does not match (format version, role, input and output names, scales, charset), never a wrong answer.
"""
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence

__all__ = [
    "EXPORT_FORMAT_VERSION",
    "SELECTOR_INPUTS",
    "SELECTOR_OUTPUTS",
    "SPOTTER_INPUTS",
    "ExportMismatchError",
    "check_metadata",
    "check_pair",
    "decode_metadata",
    "encode_metadata",
    "model_metadata",
]

# Bump when the graphs' inputs, outputs or their meaning change: files of another version are refused.
EXPORT_FORMAT_VERSION = 1
_PREFIX = "dld."
SPOTTER_INPUTS = ("image",)
SELECTOR_INPUTS = ("thumbnail",)
SELECTOR_OUTPUTS = ("logits",)


class ExportMismatchError(ValueError):
    """An exported file that does not fit the runner, its sibling file or the expected model."""


def model_metadata(cfg, role: str, export_id: str, input_names: Sequence[str], output_names: Sequence[str]) -> Dict[str, Any]:
    """
    Everything the runner needs besides the graph, read from the model's config: preprocessing, the candidate
    scales, the charset, postprocessing thresholds. `role` is "spotter" or "selector"; `export_id` pairs the
    files written by one export.
    """
    head = cfg.MODEL.TEXT_HEAD
    is_dld = cfg.MODEL.META_ARCHITECTURE == "DLDTextSpotter"
    return {
        "format_version": EXPORT_FORMAT_VERSION,
        "role": role,
        "export_id": export_id,
        "meta_architecture": cfg.MODEL.META_ARCHITECTURE,
        "input_names": list(input_names),
        "output_names": list(output_names),
        # The selector's candidates (DLD), or the plain spotter's fixed test scale.
        "scales": [float(s) for s in cfg.MODEL.DLD.SCALES] if is_dld else [float(cfg.TEST.FIXED_SCALE)],
        "test_cost_bias": float(cfg.MODEL.DLD.SELECTOR.TEST_COST_BIAS) if is_dld else 0.0,
        "selector_input_size": int(cfg.MODEL.DLD.SELECTOR.INPUT_SIZE),
        "charset": head.CHARSET,
        "case_sensitive": bool(head.CASE_SENSITIVE),
        "max_length": int(head.MAX_LENGTH),
        "decoder": head.DECODER,
        "mask_threshold": float(head.MASK_THRESHOLD),
        "polygon_epsilon": float(head.POLYGON_EPSILON),
        "pixel_mean": [float(v) for v in cfg.MODEL.PIXEL_MEAN],
        "pixel_std": [float(v) for v in cfg.MODEL.PIXEL_STD],
        "input_format": cfg.INPUT.FORMAT,
        "min_size_test": int(cfg.INPUT.MIN_SIZE_TEST),
        "max_size_test": int(cfg.INPUT.MAX_SIZE_TEST),
    }


def encode_metadata(meta: Mapping[str, Any]) -> Dict[str, str]:
    """Key → JSON string, keys prefixed with "dld.", for onnx `metadata_props`."""
    return {_PREFIX + k: json.dumps(v) for k, v in meta.items()}


def decode_metadata(props: Mapping[str, str], source: str) -> Dict[str, Any]:
    """The "dld." entries of a model's `metadata_props`; an error naming `source` when it has none."""
    meta = {k[len(_PREFIX):]: json.loads(v) for k, v in props.items() if k.startswith(_PREFIX)}
    if not meta:
        raise ExportMismatchError(
            f"{source} carries no DLD export metadata: it was not written by tools/export_model.py "
            "(dld.export.export_onnx)"
        )
    return meta


def _mismatch(name: str, found: Any, expected: Any) -> str:
    return f"{name}: {found!r} in the file, {expected!r} expected"


def check_metadata(
    meta: Mapping[str, Any],
    source: str,
    role: str,
    session_inputs: Sequence[str],
    session_outputs: Sequence[str],
    expected: Optional[Mapping[str, Any]] = None,
) -> None:
    """
    Raise an :class:`ExportMismatchError` naming each difference between a file's metadata and what the runner
    expects: the format version, the role, the graph's real input and output names (and those recorded), and
    any `expected` key (e.g. "scales", "charset", "case_sensitive", "max_length" of the model the caller means).
    """
    problems: List[str] = []
    version = meta.get("format_version")
    if version != EXPORT_FORMAT_VERSION:
        problems.append(
            _mismatch("export format version", version, EXPORT_FORMAT_VERSION)
            + " (re-export the model with this version of the project)"
        )
    if meta.get("role") != role:
        problems.append(_mismatch("role", meta.get("role"), role))
    wanted_inputs = list(SPOTTER_INPUTS if role == "spotter" else SELECTOR_INPUTS)
    if list(session_inputs) != wanted_inputs:
        problems.append(_mismatch("graph input names", list(session_inputs), wanted_inputs))
    if list(meta.get("output_names", [])) != list(session_outputs):
        problems.append(_mismatch("graph output names (recorded vs graph)", list(session_outputs), meta.get("output_names")))
    for key, value in (expected or {}).items():
        if key in meta and _normalise(meta[key]) != _normalise(value):
            problems.append(_mismatch(key, meta[key], value))
    if problems:
        raise ExportMismatchError(f"{source} does not match: " + "; ".join(problems))


def check_pair(spotter: Mapping[str, Any], selector: Mapping[str, Any], source: str) -> None:
    """A selector file must come from the same export as its spotter file, with the same candidate scales."""
    problems = []
    if spotter.get("export_id") != selector.get("export_id"):
        problems.append(_mismatch("export id of the selector", selector.get("export_id"), spotter.get("export_id")))
    if _normalise(spotter.get("scales")) != _normalise(selector.get("scales")):
        problems.append(_mismatch("scales of the selector", selector.get("scales"), spotter.get("scales")))
    if problems:
        raise ExportMismatchError(f"{source}: the selector and the spotter do not belong together: " + "; ".join(problems))


def _normalise(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value
