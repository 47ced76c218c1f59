"""TextDatasetMapper: reads an image and its words, augments them and builds the model's inputs."""
import copy
import logging
from typing import List, Optional

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import Boxes, BoxMode, Instances, PolygonMasks

from .augmentation import TextPreservingCrop
from .charset import CharsetEncoder

__all__ = ["TextDatasetMapper", "read_image_checked"]

logger = logging.getLogger(__name__)


def read_image_checked(file_name: str, image_format: str) -> np.ndarray:
    """`detection_utils.read_image` with an error that names the file when it cannot be read."""
    try:
        image = utils.read_image(file_name, format=image_format)
    except Exception as e:  # PIL raises several types (OSError, UnidentifiedImageError, ValueError, ...)
        raise OSError(f"Cannot read image {file_name}: {type(e).__name__}: {e}") from e
    if image.ndim < 2 or image.shape[0] == 0 or image.shape[1] == 0:
        raise OSError(f"Cannot read image {file_name}: it has zero size {image.shape}")
    return image


class TextDatasetMapper:
    """
    Maps a dataset dict with word annotations (`segmentation` polygons, `text`, `iscrowd`) to model inputs.

    Training: don't-care words (`iscrowd=1`) are dropped, as the reference does; every other word becomes a
    detection target (`gt_boxes`, `gt_classes`, `gt_masks` as PolygonMasks) and its transcription is
    encoded into `gt_texts` ([N, max_length + 1] token ids; a row of padding for a word the recognizer
    cannot read, which the recognition loss then ignores). Boxes are recomputed from the transformed
    polygons, so rotated words get tight boxes.
    Test: only the resized image.
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        augmentations: List[T.Augmentation],
        image_format: str,
        charset_encoder: CharsetEncoder,
    ):
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.charset_encoder = charset_encoder
        mode = "training" if is_train else "inference"
        logger.info(f"[TextDatasetMapper] augmentations used in {mode}: {augmentations}")

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        augs: List[T.Augmentation] = []
        if is_train:
            if cfg.INPUT.COLOR_JITTER:
                augs += [
                    T.RandomBrightness(0.875, 1.125),
                    T.RandomContrast(0.75, 1.25),
                    T.RandomSaturation(0.5, 1.5),
                ]
            if cfg.INPUT.TEXT_CROP.ENABLED:
                augs.append(TextPreservingCrop(cfg.INPUT.TEXT_CROP.MIN_SIDE_RATIO))
            low, high = cfg.INPUT.ROTATION_ANGLES
            if cfg.INPUT.ROTATION_PROB > 0 and (low, high) != (0, 0):
                augs.append(
                    T.RandomApply(
                        T.RandomRotation([low, high], expand=True, sample_style="range"),
                        prob=cfg.INPUT.ROTATION_PROB,
                    )
                )
            augs.append(
                T.ResizeShortestEdge(
                    cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING
                )
            )
        else:
            augs.append(T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, "choice"))
        from ..modeling.text_head import build_charset_encoder

        return {
            "is_train": is_train,
            "augmentations": augs,
            "image_format": cfg.INPUT.FORMAT,
            "charset_encoder": build_charset_encoder(cfg),
        }

    def __call__(self, dataset_dict: dict) -> dict:
        dataset_dict = copy.deepcopy(dataset_dict)
        image = read_image_checked(dataset_dict["file_name"], self.image_format)
        utils.check_image_size(dataset_dict, image)

        cared = [a for a in dataset_dict.get("annotations", []) if not a.get("iscrowd", 0)]
        polygons = [_polygon_of(a) for a in cared]
        boxes = np.array([_bounds(p) for p in polygons], dtype=np.float32).reshape(-1, 4)
        aug_input = T.AugInput(image, boxes=boxes if self.is_train else None)
        transforms = self.augmentations(aug_input)
        image = aug_input.image
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if not self.is_train:
            dataset_dict.pop("annotations", None)
            return dataset_dict

        dataset_dict.pop("annotations", None)
        dataset_dict["instances"] = self.words_to_instances(
            [transforms.apply_polygons([p])[0] for p in polygons],
            [a.get("text", "") for a in cared],
            image.shape[:2],
        )
        return dataset_dict

    def words_to_instances(self, polygons: List[np.ndarray], texts: List[str], image_size) -> Instances:
        """Instances of the words whose (transformed) polygon still covers some of the image."""
        height, width = image_size
        keep_polys, keep_texts = [], []
        for poly, text in zip(polygons, texts):
            clipped = np.stack([poly[:, 0].clip(0, width), poly[:, 1].clip(0, height)], axis=1)
            x0, y0, x1, y1 = _bounds(clipped)
            if x1 - x0 < 1 or y1 - y0 < 1:
                continue  # pushed out of the image by a crop; the crop only keeps whole words
            keep_polys.append(poly)
            keep_texts.append(text)
        instances = Instances(image_size)
        boxes = np.array([_bounds(p) for p in keep_polys], dtype=np.float32).reshape(-1, 4)
        instances.gt_boxes = Boxes(torch.as_tensor(boxes))
        instances.gt_boxes.clip(image_size)
        instances.gt_classes = torch.zeros(len(keep_polys), dtype=torch.int64)
        instances.gt_masks = PolygonMasks([[p.reshape(-1).astype(np.float64)] for p in keep_polys])
        instances.gt_texts = self.charset_encoder.encode_batch(keep_texts)
        return instances


def _polygon_of(annotation: dict) -> np.ndarray:
    segm = annotation.get("segmentation")
    if segm:
        return np.asarray(segm[0], dtype=np.float32).reshape(-1, 2)
    box = BoxMode.convert(annotation["bbox"], annotation["bbox_mode"], BoxMode.XYXY_ABS)
    x0, y0, x1, y1 = box
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def _bounds(poly: np.ndarray) -> Optional[list]:
    return [float(poly[:, 0].min()), float(poly[:, 1].min()), float(poly[:, 0].max()), float(poly[:, 1].max())]
