"""Detectron2 glue for the end-to-end text-spotting protocol of :mod:`dld.evaluation.protocols`."""
import copy
import itertools
import json
import logging
import os
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from detectron2.data import DatasetCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.structures import BoxMode
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager
from detectron2.utils.logger import create_small_table

from .protocols import TextGT, TextPrediction, evaluate_image, summarize

__all__ = ["TextSpottingEvaluator", "load_text_ground_truth"]

logger = logging.getLogger(__name__)

DONT_CARE_TEXT = "###"


def _annotation_polygon(anno: Dict[str, Any]) -> np.ndarray:
    """[k, 2] polygon of a Detectron2 annotation: its polygon segmentation, else its box as a rectangle."""
    seg = anno.get("segmentation")
    if isinstance(seg, (list, tuple)) and len(seg) > 0:
        if isinstance(seg[0], (list, tuple, np.ndarray)):
            polys = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in seg if len(p) >= 6]
            if len(polys) > 1:
                # One word drawn as several pieces: keep the largest piece (shoelace area).
                areas = [0.5 * abs(np.dot(p[:, 0], np.roll(p[:, 1], 1)) - np.dot(p[:, 1], np.roll(p[:, 0], 1)))
                         for p in polys]
                return polys[int(np.argmax(areas))]
            if polys:
                return polys[0]
        elif len(seg) >= 6 and len(seg) % 2 == 0:
            return np.asarray(seg, dtype=np.float64).reshape(-1, 2)
    if "bbox" in anno:
        mode = anno.get("bbox_mode", BoxMode.XYWH_ABS)
        x0, y0, x1, y1 = BoxMode.convert(list(anno["bbox"]), mode, BoxMode.XYXY_ABS)
        return _box_to_polygon(np.array([x0, y0, x1, y1], dtype=np.float64))
    return np.zeros((0, 2), dtype=np.float64)


def _box_to_polygon(box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def load_text_ground_truth(dataset_dicts: Sequence[Dict[str, Any]]) -> Dict[Any, List[TextGT]]:
    """
    Ground truth of a dataset in Detectron2's format, keyed by `image_id`.

    An annotation is don't care when `iscrowd` is 1 or its `text` is `###`. The polygon is the annotation's
    polygon segmentation (the largest piece if there are several), else its box.
    """
    out: Dict[Any, List[TextGT]] = {}
    for d in dataset_dicts:
        words = []
        for anno in d.get("annotations", []):
            text = str(anno.get("text", ""))
            ignore = bool(anno.get("iscrowd", 0)) or text == DONT_CARE_TEXT
            words.append(TextGT(polygon=_annotation_polygon(anno), text=text, ignore=ignore))
        image_id = d["image_id"]
        if image_id in out:
            raise ValueError(f"image_id {image_id!r} appears twice in the dataset")
        out[image_id] = words
    return out


class TextSpottingEvaluator(DatasetEvaluator):
    """
    End-to-end text-spotting evaluation: detection P/R/H, end-to-end P/R/H without lexicon, and word
    accuracy on matched pairs (protocol in :mod:`dld.evaluation.protocols`).

    The model's outputs are `[{"instances": Instances}]` with `scores` [N], `pred_polygons` (list of N
    [k, 2] arrays in input-image coordinates), `pred_texts` (list of N str), `text_scores` [N] and optionally
    `pred_boxes`. Instances below `score_threshold` are dropped; an instance without a usable polygon
    (k < 3) is evaluated as its box, or dropped if it has none. Predictions are matched in descending score
    order and written in that order.

    `evaluate()` returns `{"text": metrics}` with fractions in [0, 1] and, with `output_dir`, writes
    `text_metrics.json` (the same dict) and `text_predictions.json`. Only images seen by `process()` are
    evaluated.
    """

    def __init__(
        self,
        dataset_name: str,
        output_dir: Optional[str] = None,
        iou_threshold: float = 0.5,
        score_threshold: float = 0.5,
        distributed: bool = True,
    ):
        """
        Args:
            dataset_name: a name registered in `DatasetCatalog` whose dicts hold text annotations.
            output_dir: where the JSON files go; None writes nothing.
            iou_threshold: a prediction matches a ground-truth word when IoU > this value.
            score_threshold: predictions with a detection score below this are not evaluated.
            distributed: gather the predictions of all processes before evaluating on the main one.
        """
        if dataset_name not in DatasetCatalog.list():
            raise KeyError(f"Dataset '{dataset_name}' is not registered in DatasetCatalog")
        self._dataset_name = dataset_name
        self._output_dir = output_dir
        self._iou_threshold = float(iou_threshold)
        self._score_threshold = float(score_threshold)
        self._distributed = distributed
        self._ground_truth: Optional[Dict[Any, List[TextGT]]] = None  # loaded on first evaluate()
        self._predictions: List[Dict[str, Any]] = []

    @classmethod
    def from_config(
        cls, cfg, dataset_name: str, output_dir: Optional[str] = None
    ) -> "TextSpottingEvaluator":
        """
        Build the evaluator with the thresholds `cfg.TEST.TEXT.IOU_THRESHOLD` and `cfg.TEST.TEXT.SCORE_THRESHOLD`
        (keys added by :func:`dld.config.add_dld_config`). Distributed gathering is on.
        """
        return cls(
            dataset_name,
            output_dir=output_dir,
            iou_threshold=cfg.TEST.TEXT.IOU_THRESHOLD,
            score_threshold=cfg.TEST.TEXT.SCORE_THRESHOLD,
            distributed=True,
        )

    @property
    def iou_threshold(self) -> float:
        return self._iou_threshold

    @property
    def score_threshold(self) -> float:
        return self._score_threshold

    def reset(self) -> None:
        self._predictions = []

    def process(self, inputs: List[Dict[str, Any]], outputs: List[Dict[str, Any]]) -> None:
        """Keep the predictions of each image as CPU numpy / Python values (no tensors are kept)."""
        for input_, output in zip(inputs, outputs):
            instances = output.get("instances")
            words = self._instances_to_words(instances) if instances is not None else []
            self._predictions.append(
                {"image_id": input_["image_id"], "file_name": input_.get("file_name", ""), "instances": words}
            )

    def _instances_to_words(self, instances) -> List[Dict[str, Any]]:
        if not instances.has("scores"):
            return []
        scores = _to_numpy(instances.scores).reshape(-1)
        n = len(scores)
        if n == 0:
            return []
        polygons = list(instances.pred_polygons) if instances.has("pred_polygons") else [None] * n
        texts = list(instances.pred_texts) if instances.has("pred_texts") else [""] * n
        text_scores = (
            _to_numpy(instances.text_scores).reshape(-1) if instances.has("text_scores") else np.full(n, np.nan)
        )
        boxes = _to_numpy(instances.pred_boxes.tensor).reshape(-1, 4) if instances.has("pred_boxes") else None

        words = []
        for i in np.argsort(-scores, kind="stable"):
            if not scores[i] >= self._score_threshold:
                continue
            poly = _as_points(polygons[i])
            if len(poly) < 3:
                if boxes is None:
                    continue
                poly = _box_to_polygon(boxes[i])
            words.append(
                {
                    "polygon": poly,
                    "text": str(texts[i]),
                    "score": float(scores[i]),
                    "text_score": float(text_scores[i]),
                }
            )
        return words

    def _load_ground_truth(self) -> Dict[Any, List[TextGT]]:
        if self._ground_truth is None:
            self._ground_truth = load_text_ground_truth(DatasetCatalog.get(self._dataset_name))
        return self._ground_truth

    def evaluate(self) -> Dict[str, Dict[str, Any]]:
        """
        Returns:
            `OrderedDict(text=metrics)` on the main process (see :func:`dld.evaluation.protocols.summarize`
            for the keys), `{}` on the others.
        """
        if self._distributed:
            comm.synchronize()
            predictions = list(itertools.chain(*comm.gather(self._predictions, dst=0)))
            if not comm.is_main_process():
                return {}
        else:
            predictions = self._predictions

        # A padded sampler can repeat images across processes: keep the first copy.
        seen = set()
        unique = []
        for p in predictions:
            if p["image_id"] not in seen:
                seen.add(p["image_id"])
                unique.append(p)
        predictions = unique

        if not predictions:
            logger.warning(
                f"[TextSpottingEvaluator] No images were processed for '{self._dataset_name}'; "
                "all metrics are 0."
            )
            counts = []
        else:
            ground_truth = self._load_ground_truth()
            missing = [p["image_id"] for p in predictions if p["image_id"] not in ground_truth]
            if missing:
                raise ValueError(
                    f"Predictions for image_id {missing[0]!r} (and {len(missing) - 1} more) have no ground truth "
                    f"in dataset '{self._dataset_name}'"
                )
            if len(predictions) < len(ground_truth):
                logger.warning(
                    f"Evaluating {len(predictions)} of the {len(ground_truth)} images of '{self._dataset_name}'"
                )
            counts = [
                evaluate_image(
                    ground_truth[p["image_id"]],
                    [TextPrediction(w["polygon"], w["text"], w["score"]) for w in p["instances"]],
                    iou_threshold=self._iou_threshold,
                )
                for p in predictions
            ]
        metrics = summarize(counts)

        if self._output_dir:
            PathManager.mkdirs(self._output_dir)
            with PathManager.open(os.path.join(self._output_dir, "text_metrics.json"), "w") as f:
                json.dump(metrics, f, indent=2)
            with PathManager.open(os.path.join(self._output_dir, "text_predictions.json"), "w") as f:
                json.dump([_prediction_to_json(p) for p in predictions], f)

        self._log_metrics(metrics)
        return OrderedDict({"text": copy.deepcopy(metrics)})

    def _log_metrics(self, metrics: Dict[str, Any]) -> None:
        table = {k: 100.0 * v for k, v in metrics.items() if isinstance(v, float)}
        logger.info(
            f"Text spotting on '{self._dataset_name}' in % (IoU > {self._iou_threshold}, score >= "
            f"{self._score_threshold}, no lexicon), {metrics['num_images']} images, {metrics['num_gt']} "
            f"cared words, {metrics['num_pred']} cared predictions:\n" + create_small_table(table)
        )


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _as_points(polygon) -> np.ndarray:
    """[k, 2] float64 points, or an empty [0, 2] array when the input cannot be read as points."""
    if polygon is None:
        return np.zeros((0, 2), dtype=np.float64)
    try:
        pts = _to_numpy(polygon)
    except (TypeError, ValueError):
        return np.zeros((0, 2), dtype=np.float64)
    if pts.size % 2 != 0:
        return np.zeros((0, 2), dtype=np.float64)
    return pts.reshape(-1, 2)


def _json_float(v: float) -> Optional[float]:
    return float(v) if np.isfinite(v) else None


def _prediction_to_json(p: Dict[str, Any]) -> Dict[str, Any]:
    image_id = p["image_id"]
    if isinstance(image_id, np.generic):
        image_id = image_id.item()
    return {
        "image_id": image_id,
        "file_name": p["file_name"],
        "instances": [
            {
                "polygon": [[_json_float(x), _json_float(y)] for x, y in w["polygon"].tolist()],
                "text": w["text"],
                "score": _json_float(w["score"]),
                "text_score": _json_float(w["text_score"]),
            }
            for w in p["instances"]
        ],
    }
