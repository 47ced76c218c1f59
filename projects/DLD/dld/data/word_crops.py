"""
WordCropMapper: the words of a text dataset, cut out one per small canvas, for the recognition warm-up stage.

The attention recognizer needs ~10^5 word samples before it reads (see `tools/probe_recognizer.py`), and a
full image costs the backbone ~7x more pixels per word than a tight crop. The warm-up stage therefore trains
the spotter's backbone and recognition branch on word crops before the joint training (configs/synth/).
"""
import logging
from typing import List, Optional, Tuple

import cv2
import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from .charset import CharsetEncoder
from .mapper import TextDatasetMapper, _bounds, _polygon_of, read_image_checked

__all__ = ["WordCropMapper", "crop_word"]

logger = logging.getLogger(__name__)


def crop_word(
    image: np.ndarray,
    polygon: np.ndarray,
    canvas_size: Tuple[int, int],
    margin: float,
    rng: np.random.Generator,
    fill: bool = False,
) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """
    Cuts one word out of `image` onto a canvas of `canvas_size` (height, width) pixels.

    With `fill`, the word is scaled (up or down) to the largest size at which it fits the canvas with
    `margin` pixels around it. Without, it keeps its native size (so that its features look as they do in a
    full image) unless it does not fit, in which case it is scaled down to fit. It sits at a random place
    of the canvas; the rest of the canvas is the image around it (edges replicated beyond the image).

    Returns:
        (crop [H, W, C] of the image's dtype, polygon [N, 2] in canvas pixels), or None for a word taller
        than wide (the recognizer transposes those; they train in the joint stage only).
    """
    height, width = canvas_size
    x0, y0, x1, y1 = _bounds(polygon)
    word_w, word_h = x1 - x0, y1 - y0
    if word_h > word_w or word_w <= 0:
        return None
    scale = min(width / (word_w + 2 * margin), height / (word_h + 2 * margin))
    if not fill:
        scale = min(scale, 1.0)
    free_x = width - scale * (word_w + 2 * margin)
    free_y = height - scale * (word_h + 2 * margin)
    tx = rng.uniform(0, free_x) + scale * (margin - x0)
    ty = rng.uniform(0, free_y) + scale * (margin - y0)
    matrix = np.array([[scale, 0, tx], [0, scale, ty]], dtype=np.float32)
    crop = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, polygon * scale + np.array([tx, ty], dtype=np.float32)


class WordCropMapper(TextDatasetMapper):
    """
    Maps a dataset dict with word annotations to the crops of its readable words:
    `{"file_name", "crops": uint8 [K, C, H, W], "crop_polygons": K arrays [N, 2] in canvas pixels,
    "crop_texts": [K, max_length + 1] token ids}`. Words that the charset cannot encode, don't-care words
    and words taller than wide are left out (K may be 0). Bad images and annotations are handled as by
    :class:`TextDatasetMapper` (whose checks this mapper reuses). Photometric augmentation only.
    """

    @configurable
    def __init__(
        self,
        *,
        augmentations: List[T.Augmentation],
        image_format: str,
        charset_encoder: CharsetEncoder,
        canvas_size: Tuple[int, int],
        margin: float,
        fill_prob: float = 0.0,
        on_bad_image: str = "error",
        on_bad_annotation: str = "error",
    ):
        super().__init__(
            True,
            augmentations=augmentations,
            image_format=image_format,
            charset_encoder=charset_encoder,
            on_bad_image=on_bad_image,
            on_bad_annotation=on_bad_annotation,
        )
        self.canvas_size = tuple(canvas_size)
        self.margin = margin
        self.fill_prob = fill_prob

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        if not is_train:
            raise ValueError("WordCropMapper is for training only; evaluate with TextDatasetMapper")
        ret = super().from_config(cfg, is_train=True)
        # Geometry stays as rendered: rotation and resizing would change the word's native size.
        ret["augmentations"] = [
            a for a in ret["augmentations"] if isinstance(a, (T.RandomBrightness, T.RandomContrast, T.RandomSaturation))
        ]
        ret.pop("is_train")
        ret.pop("max_size")
        ret["canvas_size"] = tuple(cfg.INPUT.WORD_CROP.SIZE)
        ret["margin"] = cfg.INPUT.WORD_CROP.MARGIN
        ret["fill_prob"] = cfg.INPUT.WORD_CROP.FILL_PROB
        return ret

    def __call__(self, dataset_dict: dict) -> Optional[dict]:
        try:
            image = read_image_checked(dataset_dict["file_name"], self.image_format)
            utils.check_image_size(dataset_dict, image)
        except (OSError, ValueError) as e:
            if self.on_bad_image == "error":
                raise
            self.num_bad_images += 1
            logger.warning("Skipping an unreadable image (%d so far in this process): %s", self.num_bad_images, e)
            return None
        aug_input = T.AugInput(image)
        self.augmentations(aug_input)
        image = aug_input.image
        # Seeded from the loader's torch RNG, so that crops are reproducible under Detectron2's worker seeding.
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
        crops, polygons, texts = [], [], []
        for annotation in self._cared_words(dataset_dict, image.shape[:2]):
            text = annotation.get("text", "")
            if not self.charset_encoder.can_encode(text):
                continue
            fill = bool(rng.random() < self.fill_prob)
            cut = crop_word(image, _polygon_of(annotation), self.canvas_size, self.margin, rng, fill)
            if cut is None:
                continue
            crops.append(cut[0])
            polygons.append(cut[1])
            texts.append(text)
        height, width = self.canvas_size
        channels = image.shape[2] if image.ndim == 3 else 1
        stacked = np.stack(crops) if crops else np.zeros((0, height, width, channels), dtype=image.dtype)
        return {
            "file_name": dataset_dict["file_name"],
            "crops": torch.as_tensor(np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))),
            "crop_polygons": polygons,
            "crop_texts": self.charset_encoder.encode_batch(texts),
        }
