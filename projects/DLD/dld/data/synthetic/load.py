"""Reading a generated split into Detectron2 dataset dicts."""
import logging
import os
from typing import Any, Dict, List

from PIL import Image

from ..formats import parse_polygon_gt
from .config import DONT_CARE
from .split import synthetic_split_dir

logger = logging.getLogger(__package__)  # the package's logger, as before the split into modules


def load_synthetic_split(root: str, split: str) -> List[Dict[str, Any]]:
    """
    Read a generated split into Detectron2 dataset dicts (one per image, ``image_id`` = the image number i).

    Annotations: polygon ``segmentation``, XYXY_ABS ``bbox``, ``category_id`` 0, ``text``, and
    ``iscrowd`` 1 for don't-care words.
    """
    from detectron2.structures import BoxMode

    split_dir = synthetic_split_dir(root, split)
    image_dir = os.path.join(split_dir, "images")
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(
            f"Synthetic split {split!r} not found: {image_dir} does not exist. Generate it with "
            "`python tools/generate_synthetic_data.py --config-file configs/synth/<config>.yaml --output "
            f"{os.path.abspath(root)}` (see tools/generate_synthetic_data.py)."
        )
    if not os.path.exists(os.path.join(split_dir, "meta.json")):
        logger.warning("%s has no meta.json: the split may be incomplete; regenerate it", split_dir)

    indices = sorted(
        int(f[len("img_") : -len(".jpg")]) for f in os.listdir(image_dir) if f.startswith("img_") and f.endswith(".jpg")
    )
    dataset = []
    for i in indices:
        file_name = os.path.abspath(os.path.join(image_dir, f"img_{i}.jpg"))
        with Image.open(file_name) as im:
            width, height = im.size
        annotations = []
        for word in parse_polygon_gt(os.path.join(split_dir, "gts_polygon", f"poly_gt_img{i}.txt")):
            polygon = word["polygon"]
            x0, y0 = polygon.min(0)
            x1, y1 = polygon.max(0)
            annotations.append(
                {
                    "bbox": [float(x0), float(y0), float(x1), float(y1)],
                    "bbox_mode": BoxMode.XYXY_ABS,
                    "segmentation": [polygon.reshape(-1).astype(float).tolist()],
                    "category_id": 0,
                    "text": DONT_CARE if word["ignore"] else word["text"],
                    "iscrowd": int(word["ignore"]),
                }
            )
        dataset.append(
            {"file_name": file_name, "height": height, "width": width, "image_id": i, "annotations": annotations}
        )
    return dataset
