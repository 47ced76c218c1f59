"""
Inference from a config and weights: the one loader every tool uses (:func:`build_model_from_config`) and
:class:`TextSpotterPredictor`, Detectron2's ``DefaultPredictor`` for text spotters.
"""
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode, get_cfg
from detectron2.data import transforms as T
from detectron2.modeling import build_model
from detectron2.structures import Instances
from torch import nn

from ..config import add_dld_config
from ..data import TextDatasetMapper
from ..modeling import DLDTextSpotter

__all__ = ["SpottedImage", "SpottedWord", "TextSpotterPredictor", "build_model_from_config", "load_config"]


def load_config(config_file: str, opts: Sequence[str] = ()) -> CfgNode:
    """Detectron2's defaults, the project's keys (:func:`dld.add_dld_config`), `config_file`, then `opts`
    (``KEY VALUE`` pairs, as ``cfg.merge_from_list`` takes them). Not frozen."""
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"config file {config_file} does not exist")
    cfg = get_cfg()
    add_dld_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    return cfg


def build_model_from_config(cfg: CfgNode, weights: Optional[str] = None) -> nn.Module:
    """
    The model of `cfg` (``TextSpotterRCNN``, ``DLDTextSpotter``, ...) with `weights`, in eval mode.

    Args:
        cfg: a config of the project (:func:`load_config`).
        weights: a checkpoint (a local path, or any URL Detectron2's checkpointer opens); None reads
            ``cfg.MODEL.WEIGHTS``; "" keeps the random initial weights.

    A DLD model loads its student and selector only: the teacher plays no part in inference, needs no weights
    and stays as built. A missing local checkpoint raises FileNotFoundError before the model is built.
    """
    weights = cfg.MODEL.WEIGHTS if weights is None else weights
    if weights and "://" not in weights and not os.path.isfile(weights):
        raise FileNotFoundError(f"checkpoint {weights} does not exist")
    model = build_model(cfg)
    if weights:
        target = model
        if isinstance(model, DLDTextSpotter):
            target = nn.ModuleDict({"student": model.student, "selector": model.selector})
        DetectionCheckpointer(target).load(weights)
    return model.eval()


@dataclass
class SpottedWord:
    """One word found in an image, in the image's pixel coordinates."""

    polygon: np.ndarray  # [k, 2] float32 outline
    box: List[float]  # [x0, y0, x1, y1]
    text: str
    score: float  # detection score
    text_score: float  # recognition score

    def to_dict(self, ndigits: int = 1) -> Dict[str, Any]:
        """JSON-ready, coordinates rounded to `ndigits`, scores to 4 digits."""
        return {
            "polygon": np.round(np.asarray(self.polygon, dtype=np.float64), ndigits).tolist(),
            "box": [round(float(v), ndigits) for v in self.box],
            "text": self.text,
            "score": round(self.score, 4),
            "text_score": round(self.text_score, 4),
        }


@dataclass
class SpottedImage:
    """The words of one image and what they cost."""

    words: List[SpottedWord]
    selected_scale: float  # scale of the image the network read (DLD: the selector's choice)
    gflops: Optional[float]  # of the model at that scale (None where the model does not count them)
    seconds: float  # wall time of the model's forward, per image of the batch
    instances: Instances = field(repr=False)  # the model's raw output, on the CPU

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready, numbers rounded (3 digits for the scale and GFLOPs, 4 for the seconds)."""
        return {
            "selected_scale": round(self.selected_scale, 3),
            "gflops": None if self.gflops is None else round(self.gflops, 3),
            "seconds": round(self.seconds, 4),
            "words": [w.to_dict() for w in self.words],
        }


def _spotted_image(output: Dict[str, Any]) -> SpottedImage:
    instances = output["instances"].to("cpu")
    words = [
        SpottedWord(np.asarray(p, dtype=np.float32).reshape(-1, 2), [float(v) for v in b], t, float(s), float(ts))
        for p, b, t, s, ts in zip(
            instances.pred_polygons, instances.pred_boxes.tensor.tolist(), instances.pred_texts,
            instances.scores.tolist(), instances.text_scores.tolist(),
        )
    ]
    gflops = output.get("gflops")
    return SpottedImage(
        words=words,
        selected_scale=float(output.get("selected_scale", 1.0)),
        gflops=None if gflops is None else float(gflops),
        seconds=float(output.get("inference_time_s", 0.0)),
        instances=instances,
    )


class TextSpotterPredictor:
    """
    Detectron2's ``DefaultPredictor`` for the project's spotters: built from a config and weights (a plain
    spotter or a DLD student, no teacher needed), it takes one BGR image (``np.ndarray`` [H, W, 3], as
    ``cv2.imread`` gives) or a list of them, resizes each as the evaluation does (the test mapper's
    augmentations, ``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``), runs the model without gradients and returns a
    :class:`SpottedImage` per image: the words (polygon, box, text, detection and text scores) in the image's
    coordinates, and the cost (selected scale, GFLOPs, seconds).

    Example::

        cfg = load_config("configs/synth/text_spotter_R_18_FPN_synth.yaml")
        predictor = TextSpotterPredictor(cfg, "output/synth/text_spotter_R_18/model_final.pth")
        result = predictor(cv2.imread("image.jpg"))
        print([w.text for w in result.words], result.selected_scale, result.gflops)
    """

    def __init__(self, cfg: CfgNode, weights: Optional[str] = None, model: Optional[nn.Module] = None):
        """
        Args:
            cfg: the model's config (:func:`load_config`).
            weights: checkpoint (None: ``cfg.MODEL.WEIGHTS``; "": random weights); see
                :func:`build_model_from_config`.
            model: an already built model to wrap instead (`weights` is then ignored).
        """
        self.cfg = cfg.clone()
        self.model = model.eval() if model is not None else build_model_from_config(self.cfg, weights)
        self.augmentations = T.AugmentationList(
            TextDatasetMapper.from_config(self.cfg, is_train=False)["augmentations"]
        )
        self.input_format = self.cfg.INPUT.FORMAT
        if self.input_format not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.FORMAT {self.input_format!r}: the predictor takes BGR or RGB models")

    def _model_input(self, image: np.ndarray) -> Dict[str, Any]:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"expected a BGR image of shape [H, W, 3], got {image.shape}")
        height, width = image.shape[:2]
        if self.input_format == "RGB":
            image = image[:, :, ::-1]
        aug_input = T.AugInput(np.ascontiguousarray(image))
        self.augmentations(aug_input)
        tensor = torch.as_tensor(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)))
        return {"image": tensor, "height": height, "width": width}

    @torch.no_grad()
    def __call__(self, images: Union[np.ndarray, Sequence[np.ndarray]]) -> Union[SpottedImage, List[SpottedImage]]:
        """One BGR image -> one :class:`SpottedImage`; a list of them (one batch) -> a list."""
        single = isinstance(images, np.ndarray) and images.ndim == 3
        batch = [images] if single else list(images)
        if not batch:
            return []
        outputs = self.model([self._model_input(im) for im in batch])
        results = [_spotted_image(out) for out in outputs]
        return results[0] if single else results
