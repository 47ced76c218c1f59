"""Augmentations specific to text: a random crop that never cuts a word."""
import numpy as np
from detectron2.data import transforms as T

__all__ = ["TextPreservingCrop"]


class TextPreservingCrop(T.Augmentation):
    """
    Random crop whose borders do not cut any word box: every word ends up wholly inside or wholly outside,
    and at least one word stays inside. After `max_tries` failed draws the image is left whole.
    """

    def __init__(self, min_side_ratio: float = 0.5, max_tries: int = 50):
        super().__init__()
        if not 0 < min_side_ratio <= 1:
            raise ValueError(f"min_side_ratio must be in (0, 1], got {min_side_ratio}")
        self.min_side_ratio = min_side_ratio
        self.max_tries = max_tries

    def get_transform(self, image: np.ndarray, boxes: np.ndarray) -> T.Transform:
        height, width = image.shape[:2]
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return T.NoOpTransform()
        for _ in range(self.max_tries):
            ch = int(np.random.uniform(self.min_side_ratio, 1.0) * height)
            cw = int(np.random.uniform(self.min_side_ratio, 1.0) * width)
            y0 = np.random.randint(0, height - ch + 1)
            x0 = np.random.randint(0, width - cw + 1)
            x1, y1 = x0 + cw, y0 + ch
            inside = (boxes[:, 0] >= x0) & (boxes[:, 1] >= y0) & (boxes[:, 2] <= x1) & (boxes[:, 3] <= y1)
            outside = (boxes[:, 2] <= x0) | (boxes[:, 0] >= x1) | (boxes[:, 3] <= y0) | (boxes[:, 1] >= y1)
            if inside.any() and bool(np.all(inside | outside)):
                return T.CropTransform(x0, y0, cw, ch)
        return T.NoOpTransform()
