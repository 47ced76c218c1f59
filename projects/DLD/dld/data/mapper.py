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
from .charset import CharsetEncoder, build_charset_encoder
from .checks import BadAnnotationError, annotation_problem, check_on_bad_mode

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

    Bad input. An image that cannot be read (corrupt, truncated, empty, a decompression bomb) or whose size
    differs from the dict's raises OSError / ValueError naming the file; in training with
    ``on_bad_image="skip"`` the mapper returns None instead (Detectron2's loader then takes the next image) and
    logs the file with a running count. A word that cannot be a target
    (:func:`dld.data.checks.annotation_problem`) raises :class:`BadAnnotationError` naming the file and the
    annotation, or with ``on_bad_annotation="skip"`` is dropped, logged and counted. An image larger than
    ``max_size`` is shrunk to it by the resize, with a log line for the first few.
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        augmentations: List[T.Augmentation],
        image_format: str,
        charset_encoder: CharsetEncoder,
        on_bad_image: str = "error",
        on_bad_annotation: str = "error",
        max_size: Optional[int] = None,
    ):
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.charset_encoder = charset_encoder
        self.on_bad_image = check_on_bad_mode(on_bad_image, "DATALOADER.ON_BAD_IMAGE")
        self.on_bad_annotation = check_on_bad_mode(on_bad_annotation)
        self.max_size = max_size
        self.num_bad_images = 0
        self.num_bad_words = 0
        self.num_capped = 0
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
        return {
            "is_train": is_train,
            "augmentations": augs,
            "image_format": cfg.INPUT.FORMAT,
            "charset_encoder": build_charset_encoder(cfg),
            "on_bad_image": cfg.DATALOADER.ON_BAD_IMAGE,
            "on_bad_annotation": cfg.DATASETS.ON_BAD_ANNOTATION,
            "max_size": cfg.INPUT.MAX_SIZE_TRAIN if is_train else cfg.INPUT.MAX_SIZE_TEST,
        }

    def __call__(self, dataset_dict: dict) -> Optional[dict]:
        dataset_dict = copy.deepcopy(dataset_dict)
        try:
            image = read_image_checked(dataset_dict["file_name"], self.image_format)
            utils.check_image_size(dataset_dict, image)
        except (OSError, ValueError) as e:  # check_image_size raises a ValueError naming the file
            # At test time a skipped image would be replaced by another one and change the metrics: always raise.
            if not self.is_train or self.on_bad_image == "error":
                raise
            self.num_bad_images += 1
            logger.warning("Skipping an unreadable image (%d so far in this process): %s", self.num_bad_images, e)
            return None

        cared = self._cared_words(dataset_dict, image.shape[:2]) if self.is_train else []
        polygons = [_polygon_of(a) for a in cared]
        boxes = np.array([_bounds(p) for p in polygons], dtype=np.float32).reshape(-1, 4)
        aug_input = T.AugInput(image, boxes=boxes if self.is_train else None)
        transforms = self.augmentations(aug_input)
        self._log_if_capped(dataset_dict["file_name"], transforms)
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

    def _cared_words(self, dataset_dict: dict, image_size) -> List[dict]:
        """The annotations that are training targets: not don't care, and usable (else raised or skipped)."""
        height, width = image_size
        cared = []
        for k, annotation in enumerate(dataset_dict.get("annotations", [])):
            if annotation.get("iscrowd", 0):
                continue
            problem = annotation_problem(annotation, width, height)
            if problem is not None:
                source = f" ({annotation['source']})" if "source" in annotation else ""
                message = f"{dataset_dict['file_name']}, annotation {k}{source}: {problem[1]}"
                if self.on_bad_annotation == "error":
                    raise BadAnnotationError(message)
                self.num_bad_words += 1
                logger.warning(
                    "Skipping a word that cannot be a target (%d so far in this process): %s",
                    self.num_bad_words, message,
                )
                continue
            cared.append(annotation)
        return cared

    def _log_if_capped(self, file_name: str, transforms: T.TransformList) -> None:
        """Log (the first few times) when the resize shrank an image to the maximum size."""
        resizes = [t for t in transforms.transforms if isinstance(t, T.ResizeTransform)]
        if not self.max_size or not resizes:
            return
        r = resizes[-1]
        if max(r.new_h, r.new_w) < max(r.h, r.w) and abs(max(r.new_h, r.new_w) - self.max_size) <= 1:
            self.num_capped += 1
            if self.num_capped <= 3:
                logger.info(
                    f"Image {file_name} of {r.w}x{r.h} is capped to {r.new_w}x{r.new_h} by INPUT.MAX_SIZE_"
                    f"{'TRAIN' if self.is_train else 'TEST'}={self.max_size} (logged for the first 3 such images)"
                )

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
