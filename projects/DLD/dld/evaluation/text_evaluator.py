"""Detectron2 glue for the ICDAR text-spotting protocol (:mod:`dld.evaluation.protocols`, `.lexicon`, `.submission`)."""
import copy
import itertools
import json
import logging
import os
from collections import OrderedDict
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.structures import BoxMode
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager

from .cost_metrics import COST_OUTPUT_KEYS, cost_metrics, cost_table, read_cost
from .lexicon import Lexicon, load_lexicons
from .protocols import TextGT, TextPrediction, evaluate_protocol, metrics_table
from .submission import POLYGON_FORMATS, read_gt_zip, to_submission_words, write_submission_zip

__all__ = ["TextSpottingEvaluator", "load_text_ground_truth"]

logger = logging.getLogger(__name__)

DONT_CARE_TEXT = "###"
_TRAILING_NUMBER = re.compile(r"([0-9]+)$")


def _annotation_polygon(anno: Dict[str, Any]) -> np.ndarray:
    """
    [k, 2] polygon of a Detectron2 annotation: its polygon segmentation, else its box as a rectangle. A piece
    with fewer than 3 points or an odd number of coordinates is not a polygon and is passed over.
    """
    seg = anno.get("segmentation")
    if isinstance(seg, (list, tuple)) and len(seg) > 0:
        if isinstance(seg[0], (list, tuple, np.ndarray)):
            polys = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in seg if len(p) >= 6 and len(p) % 2 == 0]
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
    num_boxes_for_polygons = 0
    for d in dataset_dicts:
        words = []
        for anno in d.get("annotations", []):
            text = str(anno.get("text", ""))
            ignore = bool(anno.get("iscrowd", 0)) or text == DONT_CARE_TEXT
            num_boxes_for_polygons += bool(anno.get("segmentation")) and not _is_polygon(anno)
            words.append(TextGT(polygon=_annotation_polygon(anno), text=text, ignore=ignore))
        image_id = d["image_id"]
        if image_id in out:
            raise ValueError(f"image_id {image_id!r} appears twice in the dataset")
        out[image_id] = words
    if num_boxes_for_polygons:
        logger.warning(
            f"{num_boxes_for_polygons} ground-truth word(s) have a segmentation that is not a polygon (fewer than "
            "3 points, an odd number of coordinates): scored as their box"
        )
    return out


def _is_polygon(anno: Dict[str, Any]) -> bool:
    """Whether :func:`_annotation_polygon` finds a polygon in the annotation's segmentation."""
    seg = anno.get("segmentation")
    pieces = seg if isinstance(seg, (list, tuple)) and seg and isinstance(seg[0], (list, tuple, np.ndarray)) else [seg]
    return any(p is not None and len(p) >= 6 and len(p) % 2 == 0 for p in pieces)


class TextSpottingEvaluator(DatasetEvaluator):
    """
    Text-spotting evaluation with the ICDAR end-to-end protocol (:mod:`dld.evaluation.protocols`): detection
    P/R/H, end-to-end P/R/H and word-spotting P/R/H, without lexicon and with each lexicon of the dataset, and
    word accuracy on matched pairs.

    The model's outputs are `[{"instances": Instances}]` with `scores` [N], `pred_polygons` (list of N
    [k, 2] arrays in input-image coordinates), `pred_texts` (list of N str), `text_scores` [N] and optionally
    `pred_boxes`. Instances below `score_threshold` are dropped; an instance without a usable polygon
    (k < 3) is evaluated as its box, or dropped if it has none. Predictions are kept in descending score order,
    which is the "file order" of the protocol's greedy matching.

    What is scored is the written form of the predictions (:func:`dld.evaluation.submission.to_submission_words`:
    integer coordinates, clockwise, 4-point `cv2.minAreaRect` boxes in "quad" format, commas removed from the
    words), so that scoring `submission.zip` with `tools/evaluate_submission.py` gives the same numbers.

    Dataset metadata (`MetadataCatalog.get(dataset_name)`), each overridable by the argument of the same name:

    * `eval_gt_zip`: a ground-truth zip (``gt_img_<N>.txt`` / ``poly_gt_img<N>.txt``); if set and present, the
      ground truth comes from it, image N being the number in the image's file name (else its `image_id`).
      Otherwise the ground truth is the dataset dicts' annotations (:func:`load_text_ground_truth`).
    * `lexicons`: kind -> path ("strong": directory or zip of ``voc_img_<N>.txt``; "weak", "generic", "full":
      text files); a missing file skips its kind with a warning.
    * `polygon_format`: "quad" (4-point boxes, ICDAR 2013/2015) or "polygon" (default, Total-Text).

    When the outputs carry their cost (`selected_scale`, `gflops`, `inference_time_s` beside "instances", as
    the project's meta-architectures put them), the metrics also hold `mean_scale`, `scale_count_<s>`,
    `gflops` (mean per image) and `images_per_s` (:func:`dld.evaluation.cost_metrics.cost_metrics`); without
    them these keys are absent.

    `evaluate()` returns `{"text": metrics}` (keys in :func:`dld.evaluation.protocols.evaluate_protocol`) with
    fractions in [0, 1] and, with `output_dir`, writes `text_metrics.json` (the same dict),
    `text_predictions.json` (the raw predictions) and `submission.zip` (``res_img_<N>.txt`` files; skipped with
    a warning when the images have no distinct numbers). Only images seen by `process()` are evaluated.
    """

    def __init__(
        self,
        dataset_name: str,
        output_dir: Optional[str] = None,
        iou_threshold: float = 0.5,
        score_threshold: float = 0.5,
        distributed: bool = True,
        area_precision_threshold: float = 0.5,
        word_spotting: bool = True,
        eval_gt_zip: Optional[str] = None,
        lexicons: Optional[Mapping[str, str]] = None,
        polygon_format: Optional[str] = None,
    ):
        """
        Args:
            dataset_name: a name registered in `DatasetCatalog` whose dicts hold text annotations.
            output_dir: where the output files go; None writes nothing.
            iou_threshold: a prediction matches a ground-truth word when IoU > this value.
            score_threshold: predictions with a detection score below this are not evaluated.
            distributed: gather the predictions of all processes before evaluating on the main one.
            area_precision_threshold: a prediction is don't care when more than this fraction of its area lies
                inside one don't-care word.
            word_spotting: also compute the word-spotting metrics (`ws_*`).
            eval_gt_zip, lexicons, polygon_format: override the dataset metadata of the same name.
        """
        if dataset_name not in DatasetCatalog.list():
            raise KeyError(f"Dataset '{dataset_name}' is not registered in DatasetCatalog")
        meta = MetadataCatalog.get(dataset_name)
        self._dataset_name = dataset_name
        self._output_dir = output_dir
        self._iou_threshold = float(iou_threshold)
        self._score_threshold = float(score_threshold)
        self._area_precision_threshold = float(area_precision_threshold)
        self._word_spotting = bool(word_spotting)
        self._distributed = distributed
        # Metadata paths are relative to $DETECTRON2_DATASETS, read now (the root may change after import).
        self._eval_gt_zip = eval_gt_zip if eval_gt_zip is not None else _resolve(meta.get("eval_gt_zip", None))
        if lexicons is None:
            lexicons = {kind: _resolve(path) for kind, path in (meta.get("lexicons", None) or {}).items()}
        self._lexicon_paths = dict(lexicons)
        self._polygon_format = polygon_format or meta.get("polygon_format", None) or "polygon"
        if self._polygon_format not in POLYGON_FORMATS:
            raise ValueError(f"polygon_format must be one of {POLYGON_FORMATS}, got {self._polygon_format!r}")
        self._ground_truth: Optional[Dict[Any, List[TextGT]]] = None  # loaded on first evaluate()
        self._gt_from_zip = False
        self._lexicons: Optional[List[Lexicon]] = None
        self._predictions: List[Dict[str, Any]] = []

    @classmethod
    def from_config(
        cls, cfg, dataset_name: str, output_dir: Optional[str] = None
    ) -> "TextSpottingEvaluator":
        """
        Build the evaluator with the thresholds `cfg.TEST.TEXT.IOU_THRESHOLD`, `cfg.TEST.TEXT.SCORE_THRESHOLD`
        and `cfg.TEST.TEXT.AREA_PRECISION_THRESHOLD` (0.5 when absent) from :func:`dld.config.add_dld_config`;
        ground truth, lexicons and polygon format come from the dataset metadata. Distributed gathering is on.
        """
        return cls(
            dataset_name,
            output_dir=output_dir,
            iou_threshold=cfg.TEST.TEXT.IOU_THRESHOLD,
            score_threshold=cfg.TEST.TEXT.SCORE_THRESHOLD,
            area_precision_threshold=cfg.TEST.TEXT.AREA_PRECISION_THRESHOLD,
            distributed=True,
        )

    @property
    def iou_threshold(self) -> float:
        return self._iou_threshold

    @property
    def score_threshold(self) -> float:
        return self._score_threshold

    @property
    def polygon_format(self) -> str:
        return self._polygon_format

    def reset(self) -> None:
        self._predictions = []

    def process(self, inputs: List[Dict[str, Any]], outputs: List[Dict[str, Any]]) -> None:
        """Keep the predictions of each image as CPU numpy / Python values (no tensors are kept)."""
        for input_, output in zip(inputs, outputs):
            instances = output.get("instances")
            words = self._instances_to_words(instances) if instances is not None else []
            record = {"image_id": input_["image_id"], "file_name": input_.get("file_name", ""), "instances": words}
            record.update(read_cost(output))
            self._predictions.append(record)

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
            zip_path = self._eval_gt_zip
            if zip_path and os.path.isfile(zip_path):
                self._ground_truth = read_gt_zip(zip_path)
                self._gt_from_zip = True
            else:
                if zip_path:
                    logger.warning(
                        f"eval_gt_zip {zip_path!r} of '{self._dataset_name}' not found; "
                        "evaluating against the dataset's annotations"
                    )
                self._ground_truth = load_text_ground_truth(DatasetCatalog.get(self._dataset_name))
        return self._ground_truth

    def _load_lexicons(self) -> List[Lexicon]:
        if self._lexicons is None:
            self._lexicons = load_lexicons(self._lexicon_paths)
        return self._lexicons

    def evaluate(self) -> Dict[str, Dict[str, Any]]:
        """
        Returns:
            `OrderedDict(text=metrics)` on the main process (see
            :func:`dld.evaluation.protocols.evaluate_protocol` for the keys), `{}` on the others.
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

        numbers = _image_numbers(predictions)
        fmt = "quad" if self._polygon_format == "quad" else "polygon"
        written: Dict[Any, List[TextPrediction]] = {}
        if not predictions:
            logger.warning(
                f"[TextSpottingEvaluator] No images were processed for '{self._dataset_name}'; "
                "all metrics are 0."
            )
            ground_truth: Dict[Any, List[TextGT]] = {}
        else:
            full_gt = self._load_ground_truth()
            if self._gt_from_zip and numbers is None:
                raise ValueError(
                    f"'{self._dataset_name}' is scored against {self._eval_gt_zip!r}, but its images have no "
                    "distinct numbers (from the file names or integer image_ids) to find their ground truth"
                )
            # Key every image by its number when the ground truth is the zip, else by its image_id.
            keys = [numbers[p["image_id"]] if self._gt_from_zip else p["image_id"] for p in predictions]
            missing = [(p["image_id"], k) for p, k in zip(predictions, keys) if k not in full_gt]
            if missing:
                raise ValueError(
                    f"Predictions for image_id {missing[0][0]!r} (and {len(missing) - 1} more) have no ground "
                    f"truth in dataset '{self._dataset_name}'"
                    + (f" (looked for image {missing[0][1]} in {self._eval_gt_zip!r})" if self._gt_from_zip else "")
                )
            if len(predictions) < len(full_gt):
                logger.warning(
                    f"Evaluating {len(predictions)} of the {len(full_gt)} images of '{self._dataset_name}'"
                )
            # Re-key by image number when every image has one, so that per-image lexicons are found.
            if numbers is not None and not self._gt_from_zip:
                ground_truth = {numbers[p["image_id"]]: full_gt[p["image_id"]] for p in predictions}
                keys = [numbers[p["image_id"]] for p in predictions]
            else:
                ground_truth = {k: full_gt[k] for k in keys}
            for p, k in zip(predictions, keys):
                words = [TextPrediction(w["polygon"], w["text"], w["score"]) for w in p["instances"]]
                written[k] = to_submission_words(words, fmt)

        metrics = evaluate_protocol(
            ground_truth,
            written,
            lexicons=self._load_lexicons(),
            iou_threshold=self._iou_threshold,
            area_precision_threshold=self._area_precision_threshold,
            word_spotting=self._word_spotting,
        )
        metrics.update(cost_metrics(predictions))

        if self._output_dir:
            PathManager.mkdirs(self._output_dir)
            with PathManager.open(os.path.join(self._output_dir, "text_metrics.json"), "w") as f:
                json.dump(metrics, f, indent=2)
            with PathManager.open(os.path.join(self._output_dir, "text_predictions.json"), "w") as f:
                json.dump([_prediction_to_json(p) for p in predictions], f)
            if numbers is not None:  # `written` is keyed by image number
                write_submission_zip(os.path.join(self._output_dir, "submission.zip"), written)
            else:
                logger.warning(
                    f"Not writing submission.zip for '{self._dataset_name}': the images have no distinct numbers "
                    "(from the file names or integer image_ids)"
                )

        self._log_metrics(metrics)
        return OrderedDict({"text": copy.deepcopy(metrics)})

    def _log_metrics(self, metrics: Dict[str, Any]) -> None:
        costs = cost_table(metrics)
        logger.info(
            f"Text spotting on '{self._dataset_name}' in % (IoU > {self._iou_threshold}, score >= "
            f"{self._score_threshold}, {self._polygon_format}), {metrics['num_images']} images, "
            f"{metrics['num_gt']} cared words, {metrics['num_pred']} cared predictions, word accuracy "
            f"{100.0 * metrics['word_accuracy']:.2f}:\n" + metrics_table(metrics)
            + (f"\nCost:\n{costs}" if costs is not None else "")
        )


def _image_numbers(predictions: Sequence[Dict[str, Any]]) -> Optional[Dict[Any, int]]:
    """
    image_id -> image number N (of ``gt_img_<N>.txt`` / ``res_img_<N>.txt``): the last digits of the file name
    (``img_12.jpg`` -> 12) when every image has them and they are distinct, else the integer image_ids when
    they are all integers, else None.
    """
    from_names = {}
    for p in predictions:
        m = _TRAILING_NUMBER.search(os.path.splitext(os.path.basename(str(p.get("file_name") or "")))[0])
        if not m:
            break
        from_names[p["image_id"]] = int(m.group(1))
    else:
        if len(set(from_names.values())) == len(from_names):
            return from_names
    ids = [p["image_id"] for p in predictions]
    if all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids):
        return {i: int(i) for i in ids}
    return None


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
        **{k: p[k] for k in COST_OUTPUT_KEYS if k in p},
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


def _resolve(path: Optional[str]) -> Optional[str]:
    from ..data.builtin import resolve_dataset_path

    return None if path is None else resolve_dataset_path(path)
