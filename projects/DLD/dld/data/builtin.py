"""
Registers the project's datasets in Detectron2's catalogs (``import dld`` does it; nothing is read then).

Splits: the embedded synthetic data (``synth_text_train/val``), the real datasets read from their raw,
as-distributed files (``ic13_train/test``, ``ic15_train/test``, ``mlt17_train/val``,
``totaltext_train/test``; one :class:`TextSplit` record each in :data:`TEXT_SPLITS`) and ``synthtext``
(SynthText's ``gt.mat``, converted once into a cache). The layouts are in ``datasets/README.md``.

Root and paths. The root is ``$DETECTRON2_DATASETS`` (default ``./datasets``), read when a dataset is
*loaded*, never at import: a dataset that is not on disk raises FileNotFoundError naming the path it looked for
when it is used. For the same reason the paths in the metadata are stored *relative to the root*; read them
with :func:`resolve_dataset_path`, which joins them to the root as it is at that moment (an absolute path, as
stored by ``register_text_datasets(root=...)`` or by your own registration, passes through unchanged).

Metadata of every real split:

* ``thing_classes=["text"]``, ``evaluator_type="text"``;
* ``polygon_format``: ``"quad"`` (IC13, IC15, MLT, SynthText: 4-point words) or ``"polygon"`` (Total-Text and
  the synthetic splits: 3 or more points);
* test splits only — ``eval_gt_zip``: the official end-to-end ground-truth zip (``gt_img_N.txt`` /
  ``poly_gt_imgN.txt`` members, ``x1,y1,...,transcription``) and ``lexicons``: ``{"strong": zip of
  ``voc_img_N.txt`` per image, "weak": txt, "generic": txt}`` for ``ic13_test``/``ic15_test``,
  ``{"full": txt}`` for ``totaltext_test``. Other splits do not have these keys.

Dataset dicts: ``file_name``, ``height``/``width`` (from the image header, after EXIF orientation as
Detectron2 decodes it), ``image_id`` (the number N of ``img_N``/``imgN``/``N``, which joins the per-image GT and
lexicon files), ``annotations`` of ``bbox`` (XYXY_ABS around the polygon), ``bbox_mode``, ``segmentation``
(one flat polygon), ``category_id`` 0, ``text`` (``###`` for don't care) and ``iscrowd`` (1 for don't care).
Points outside the image are clipped to it at load time, and the count is logged; SynthText keeps its raw
boxes (the mapper clips them) and logs how many leave the image. An image without words is kept. Every word
is kept, even one that cannot be a training target (the evaluation protocol counts such ground truth as
missed); each annotation of a raw text split carries ``source`` ("<gt file>, line N") so that the training
checks (:mod:`dld.data.checks`) can name it. An image whose size cannot be read raises OSError naming it, or is
skipped and counted when loading leniently, as is a ground-truth file that cannot be read as text.
"""
import functools
import glob
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog

from .formats import DONT_CARE, GT_PARSERS, AnnotationFormatError

__all__ = [
    "TEXT_SPLITS",
    "TextSplit",
    "datasets_root",
    "image_id_from_name",
    "load_registered_dataset",
    "load_synthtext",
    "load_text_dataset",
    "register_synthetic_datasets",
    "register_text_datasets",
    "resolve_dataset_path",
]

logger = logging.getLogger(__name__)

SYNTHETIC_SPLITS = {"synth_text_train": "train", "synth_text_val": "val"}

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
_README = "datasets/README.md"


@dataclass(frozen=True)
class TextSplit:
    """
    Where one split of a raw dataset lives, relative to the datasets root.

    Attributes:
        image_dirs: image folders (glob patterns allowed); images are paired with ground truth by file stem.
        gt_dir: folder of the per-image ground-truth files ``<gt_prefix><image stem><ext>``.
        gt_format: key of :data:`dld.data.formats.GT_PARSERS`.
        gt_exts: accepted ground-truth extensions.
        polygon_format: ``"quad"`` or ``"polygon"`` (metadata for the evaluator).
        eval_gt_zip: the official end-to-end GT zip of a test split.
        lexicons: lexicon name -> file, for a test split.
    """

    image_dirs: Tuple[str, ...]
    gt_dir: str
    gt_format: str
    gt_prefix: str = "gt_"
    gt_exts: Tuple[str, ...] = (".txt",)
    polygon_format: str = "quad"
    eval_gt_zip: Optional[str] = None
    lexicons: Dict[str, str] = field(default_factory=dict)


def _icdar_lexicons(year: str, weak: str) -> Dict[str, str]:
    folder = f"evaluation/lexicons/icdar{year}"
    return {
        "strong": f"{folder}/strong_lexicon.zip",
        "weak": f"{folder}/{weak}",
        "generic": f"{folder}/GenericVocabulary.txt",
    }


TEXT_SPLITS: Dict[str, TextSplit] = {
    "ic13_train": TextSplit(
        ("icdar2013/Challenge2_Training_Task12_Images",), "icdar2013/Challenge2_Training_Task1_GT", "icdar2013"
    ),
    "ic13_test": TextSplit(
        ("icdar2013/Challenge2_Test_Task12_Images",),
        "icdar2013/Challenge2_Test_Task1_GT",
        "icdar2013",
        eval_gt_zip="evaluation/gt-icdar2013.zip",
        lexicons=_icdar_lexicons("2013", "ch2_test_vocabulary.txt"),
    ),
    "ic15_train": TextSplit(
        ("icdar2015/ch4_training_images",), "icdar2015/ch4_training_localization_transcription_gt", "icdar2015"
    ),
    "ic15_test": TextSplit(
        ("icdar2015/ch4_test_images",),
        "icdar2015/Challenge4_Test_Task1_GT",
        "icdar2015",
        eval_gt_zip="evaluation/gt-icdar2015.zip",
        lexicons=_icdar_lexicons("2015", "ch4_test_vocabulary.txt"),
    ),
    "mlt17_train": TextSplit(
        ("mlt2017/ch8_training_images_*",), "mlt2017/ch8_training_localization_transcription_gt_v2", "mlt2017"
    ),
    "mlt17_val": TextSplit(
        ("mlt2017/ch8_validation_images",), "mlt2017/ch8_validation_localization_transcription_gt_v2", "mlt2017"
    ),
    "totaltext_train": TextSplit(
        ("totaltext/Images/Train",),
        "totaltext/gt/Train",
        "totaltext",
        gt_prefix="poly_gt_",
        gt_exts=(".txt", ".mat"),
        polygon_format="polygon",
    ),
    "totaltext_test": TextSplit(
        ("totaltext/Images/Test",),
        "totaltext/gt/Test",
        "totaltext",
        gt_prefix="poly_gt_",
        gt_exts=(".txt", ".mat"),
        polygon_format="polygon",
        eval_gt_zip="evaluation/total-text-gt.zip",
        lexicons={"full": "evaluation/lexicons/total-text/full_lexicons.txt"},
    ),
}
SYNTHTEXT_DIR = "SynthText"  # holds gt.mat and the numbered image folders


# ---------------------------------------------------------------------------------------------- paths
def datasets_root() -> str:
    """``$DETECTRON2_DATASETS`` (default ``datasets``), read now."""
    return os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def resolve_dataset_path(path: str, root: Optional[str] = None) -> str:
    """
    A metadata path made usable: joined to ``root`` (default: :func:`datasets_root`, read now). An absolute
    ``path`` is returned unchanged.
    """
    return os.path.join(datasets_root() if root is None else root, os.path.expanduser(path))


def _not_found(path: str, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what}: {os.path.abspath(path)} does not exist (datasets root: $DETECTRON2_DATASETS="
        f"{os.getenv('DETECTRON2_DATASETS', '<unset>, so ./datasets')}). See {_README} for the expected layout."
    )


# ---------------------------------------------------------------------------------------------- images
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def image_id_from_name(name: str) -> int:
    """The integer N of an image or GT name: ``img_12.jpg``, ``img12``, ``12.png``, ``gt_img_12.txt`` -> 12."""
    stem = os.path.splitext(os.path.basename(name))[0]
    m = _TRAILING_NUMBER.search(stem)
    if m is None:
        raise ValueError(f"{name}: no image number at the end of the file name")
    return int(m.group(1))


def _index_files(
    dirs: Sequence[str], prefix: str, extensions: Sequence[str], what: str, lenient: bool
) -> Dict[str, str]:
    """``{stem without prefix: path}`` of the files ``<prefix><stem><ext>`` in ``dirs`` (case-blind ext)."""
    index: Dict[str, str] = {}
    exts = tuple(e.lower() for e in extensions)
    for folder in dirs:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() not in exts or not stem.startswith(prefix) or not entry.is_file():
                continue
            stem = stem[len(prefix) :]
            if stem in index:
                message = f"two {what} files for {stem!r}: {index[stem]} and {entry.path}"
                if not lenient:
                    raise ValueError(message)
                logger.warning("Keeping the first of %s", message)
                continue
            index[stem] = entry.path
    return index


_EXIF_ORIENTATION = 0x0112


def _image_size(path: str) -> Tuple[int, int, bool]:
    """
    ``(height, width, rotated)`` as Detectron2 decodes the image (EXIF orientations 5-8 swap the sides);
    OSError naming the file when it is not a readable image or has zero size.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
            orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception as e:  # PIL raises several types (UnidentifiedImageError, DecompressionBombError, ...)
        raise OSError(f"Cannot read image {path}: {type(e).__name__}: {e}") from e
    if width <= 0 or height <= 0:
        raise OSError(f"Cannot read image {path}: it has zero size ({width}x{height})")
    if orientation in (5, 6, 7, 8):
        return width, height, True
    return height, width, False


# ---------------------------------------------------------------------------------------------- dicts
def _annotation(polygon: np.ndarray, text: str, ignore: bool) -> Dict[str, Any]:
    from detectron2.structures import BoxMode

    x0, y0 = polygon.min(axis=0)
    x1, y1 = polygon.max(axis=0)
    return {
        "bbox": [float(x0), float(y0), float(x1), float(y1)],
        "bbox_mode": BoxMode.XYXY_ABS,
        "segmentation": [polygon.reshape(-1).astype(float).tolist()],
        "category_id": 0,
        "text": DONT_CARE if ignore else text,
        "iscrowd": int(ignore),
    }


def _clip(polygon: np.ndarray, width: int, height: int) -> Tuple[np.ndarray, float]:
    """The polygon clipped to the image and how far (pixels) it reached outside."""
    clipped = np.stack([polygon[:, 0].clip(0, width), polygon[:, 1].clip(0, height)], axis=1)
    return clipped, float(np.abs(clipped - polygon).max()) if len(polygon) else 0.0


def load_text_dataset(
    image_dirs: Sequence[str],
    gt_dir: str,
    gt_format: str,
    gt_prefix: str = "gt_",
    gt_exts: Sequence[str] = (".txt",),
    lenient: bool = False,
) -> List[Dict[str, Any]]:
    """
    Read a raw text dataset (one ground-truth file per image) into Detectron2 dataset dicts, sorted by
    ``image_id``. Use it to register your own data (see ``datasets/README.md``).

    Args:
        image_dirs: folders of images (any of :data:`IMAGE_EXTENSIONS`, case-blind); glob patterns allowed.
        gt_dir: folder of ``<gt_prefix><image stem><ext>`` files.
        gt_format: key of :data:`dld.data.formats.GT_PARSERS` (e.g. ``"icdar2015"``, ``"totaltext"``).
        lenient: skip (and count, and log) malformed lines, ground-truth files that cannot be read as text,
            unreadable images, images without ground truth and ground truth without images, instead of raising.

    Raises:
        FileNotFoundError: a folder is missing, or (strict) an image has no ground-truth file or the reverse;
            the message names both paths.
        AnnotationFormatError: (strict) a malformed ground-truth file; the message names the file and the line.
        OSError: (strict) an image whose size cannot be read, named.
    """
    if gt_format not in GT_PARSERS:
        raise KeyError(f"Unknown annotation format {gt_format!r}; known: {sorted(GT_PARSERS)}")
    parse = GT_PARSERS[gt_format]
    folders: List[str] = []
    for pattern in image_dirs:
        matches = [pattern] if os.path.isdir(pattern) else sorted(p for p in glob.glob(pattern) if os.path.isdir(p))
        if not matches:
            raise _not_found(pattern, "image folder")
        folders.extend(matches)
    if not os.path.isdir(gt_dir):
        raise _not_found(gt_dir, "ground-truth folder")

    images = _index_files(folders, "", IMAGE_EXTENSIONS, "image", lenient)
    gts = _index_files([gt_dir], gt_prefix, gt_exts, "ground-truth", lenient)
    unpaired = 0
    for stem in sorted(images.keys() ^ gts.keys()):
        if stem in images:
            expected = os.path.join(gt_dir, f"{gt_prefix}{stem}{gt_exts[0]}")
            message = f"image {images[stem]} has no ground-truth file {expected}"
        else:
            expected = os.path.join(folders[0], f"{stem}.jpg")
            message = f"ground-truth file {gts[stem]} has no image {expected} (or .png/.gif/...)"
        if not lenient:
            raise FileNotFoundError(message)
        logger.warning("Skipping: %s", message)
        unpaired += 1

    dataset: List[Dict[str, Any]] = []
    seen_ids: Dict[int, str] = {}
    num_words = num_cared = num_clipped = num_skipped_lines = num_rotated = num_bad_files = 0
    max_overshoot = 0.0
    for stem in sorted(images.keys() & gts.keys()):
        file_name = os.path.abspath(images[stem])
        image_id = image_id_from_name(stem)
        if image_id in seen_ids:
            raise ValueError(f"images {seen_ids[image_id]} and {file_name} have the same number {image_id}")
        seen_ids[image_id] = file_name
        try:
            words = parse(gts[stem], lenient=lenient)
            height, width, rotated = _image_size(file_name)
        except (AnnotationFormatError, OSError) as e:  # a whole file: not UTF-8, not an image, truncated, ...
            if not lenient:
                raise
            logger.warning("Skipping image %s: %s", file_name, e)
            num_bad_files += 1
            continue
        num_skipped_lines += words.num_skipped
        num_rotated += rotated
        annotations = []
        for word in words:
            polygon, overshoot = _clip(word["polygon"], width, height)
            if overshoot > 0:
                num_clipped += 1
                max_overshoot = max(max_overshoot, overshoot)
            annotation = _annotation(polygon, word["text"], word["ignore"])
            # Where the word came from, for the messages of the training-target checks (dld.data.checks).
            annotation["source"] = f"{gts[stem]}, " + (
                f"line {word['line']}" if "line" in word else f"row {word.get('row')}"
            )
            annotations.append(annotation)
            num_cared += not word["ignore"]
        num_words += len(annotations)
        dataset.append(
            {"file_name": file_name, "height": height, "width": width, "image_id": image_id,
             "annotations": annotations}
        )
    dataset.sort(key=lambda d: d["image_id"])

    logger.info(
        "Loaded %d images, %d words (%d cared) from %s and %s",
        len(dataset), num_words, num_cared, ", ".join(folders), gt_dir,
    )
    if num_clipped:
        log = logger.warning if max_overshoot > 1 else logger.info
        log("Clipped %d polygon(s) reaching outside their image (by up to %.1f px) in %s",
            num_clipped, max_overshoot, gt_dir)
    if num_rotated:
        logger.warning(
            "%d image(s) in %s carry an EXIF rotation: Detectron2 decodes them rotated, so check that their "
            "annotations are in the rotated frame", num_rotated, ", ".join(folders),
        )
    if num_skipped_lines or unpaired or num_bad_files:
        logger.warning(
            "Lenient loading skipped %d malformed annotation(s), %d unpaired file(s) and %d unreadable "
            "image(s) or ground-truth file(s) in %s",
            num_skipped_lines, unpaired, num_bad_files, gt_dir,
        )
    return dataset


def load_synthtext(
    synthtext_dir: str, cache_dir: Optional[str] = None, lenient: bool = False
) -> List[Dict[str, Any]]:
    """
    SynthText (``<synthtext_dir>/gt.mat`` and its image folders) as Detectron2 dicts; ``image_id`` is the
    index in ``gt.mat``. The first call converts ``gt.mat`` and reads the image sizes into a cache (next to
    ``gt.mat``, or in ``cache_dir``, or ``~/.cache/dld`` when that folder is read-only).
    """
    from .formats import load_synthtext_gt

    gt_mat = os.path.join(synthtext_dir, "gt.mat")
    if not os.path.isfile(gt_mat):
        raise _not_found(gt_mat, "SynthText ground truth")
    if cache_dir is None and not os.access(synthtext_dir, os.W_OK):
        cache_dir = os.path.join(os.path.expanduser("~"), ".cache", "dld")
    gt = load_synthtext_gt(gt_mat, image_root=synthtext_dir, cache_dir=cache_dir, lenient=lenient)
    assert gt.sizes is not None
    heights = np.repeat(gt.sizes[:, 0], np.diff(gt.offsets))
    widths = np.repeat(gt.sizes[:, 1], np.diff(gt.offsets))
    outside = (
        (gt.boxes[:, :, 0] < 0).any(1) | (gt.boxes[:, :, 1] < 0).any(1)
        | (gt.boxes[:, :, 0] > widths[:, None]).any(1) | (gt.boxes[:, :, 1] > heights[:, None]).any(1)
    )
    if outside.any():
        logger.info(
            "SynthText: %d of %d word boxes reach outside their image; kept raw, the mapper clips them",
            int(outside.sum()), len(outside),
        )
    usable = _usable_quads(gt.boxes, widths, heights)
    if not usable.all():
        logger.warning(
            "SynthText: dropped %d of %d word boxes that are degenerate (zero area, non-finite) or lie entirely "
            "outside their image", int((~usable).sum()), len(usable),
        )
    root = os.path.abspath(synthtext_dir)
    dataset = []
    for i, imname in enumerate(gt.imnames):
        lo, hi = int(gt.offsets[i]), int(gt.offsets[i + 1])
        dataset.append(
            {
                "file_name": os.path.join(root, imname),
                "height": int(gt.sizes[i, 0]),
                "width": int(gt.sizes[i, 1]),
                "image_id": i,
                "annotations": [
                    _annotation(gt.boxes[j].astype(np.float64), gt.words[j], False)
                    for j in range(lo, hi)
                    if usable[j]
                ],
            }
        )
    return dataset


def _usable_quads(boxes: np.ndarray, widths: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """
    [N] bool: which [N, 4, 2] word boxes can be targets: finite, some area, some of it inside the image. The
    same rules as :func:`dld.data.checks.polygon_problem`, vectorised for SynthText's millions of words (with
    the plain shoelace area: a bow tie whose two lobes cancel exactly counts as flat here).
    """
    boxes = boxes.astype(np.float64)
    finite = np.isfinite(boxes).all(axis=(1, 2))
    boxes = np.where(np.isfinite(boxes), boxes, 0.0)
    x, y = boxes[:, :, 0], boxes[:, :, 1]
    area = 0.5 * np.abs((x * np.roll(y, -1, axis=1) - y * np.roll(x, -1, axis=1)).sum(axis=1))
    inside = (np.minimum(x.max(1), widths) > np.maximum(x.min(1), 0)) & (
        np.minimum(y.max(1), heights) > np.maximum(y.min(1), 0)
    )
    return finite & (area > 1e-6) & inside


# ---------------------------------------------------------------------------------------------- registration
def _load_split(name: str, root: Optional[str], lenient: bool = False) -> List[Dict[str, Any]]:
    root = datasets_root() if root is None else root
    split = TEXT_SPLITS[name]
    gt_dir = os.path.join(root, split.gt_dir)
    if not os.path.isdir(gt_dir):
        raise _not_found(gt_dir, f"Dataset {name!r}")
    image_dirs = [os.path.join(root, d) for d in split.image_dirs]
    for pattern in image_dirs:
        if not os.path.isdir(pattern) and not any(os.path.isdir(p) for p in glob.glob(pattern)):
            raise _not_found(pattern, f"Dataset {name!r}")
    return load_text_dataset(image_dirs, gt_dir, split.gt_format, split.gt_prefix, split.gt_exts, lenient)


def _load_synthtext(root: Optional[str], lenient: bool = False) -> List[Dict[str, Any]]:
    root = datasets_root() if root is None else root
    synthtext_dir = os.path.join(root, SYNTHTEXT_DIR)
    if not os.path.isfile(os.path.join(synthtext_dir, "gt.mat")):
        raise _not_found(os.path.join(synthtext_dir, "gt.mat"), "Dataset 'synthtext'")
    return load_synthtext(synthtext_dir, lenient=lenient)


def load_registered_dataset(name: str, lenient: bool = False) -> List[Dict[str, Any]]:
    """
    ``DatasetCatalog.get(name)``, except that the raw splits registered here are loaded with ``lenient``
    (see :func:`load_text_dataset`); a dataset registered by anyone else is loaded as registered.
    """
    loader = DatasetCatalog[name] if name in DatasetCatalog.list() else None
    if lenient and isinstance(loader, functools.partial) and loader.func in (_load_split, _load_synthtext):
        return loader(lenient=True)
    return DatasetCatalog.get(name)


def register_text_datasets(root: Optional[str] = None) -> None:
    """
    Register the real splits of :data:`TEXT_SPLITS` and ``synthtext`` (names already registered are left
    alone). With ``root=None`` the root is read when a dataset is loaded and the metadata paths are relative
    to it; with a ``root`` they are absolute. Read metadata paths with :func:`resolve_dataset_path`.
    """
    base = os.path.abspath(root) if root is not None else None

    def path(rel: str) -> str:
        return rel if base is None else os.path.join(base, rel)

    for name, split in TEXT_SPLITS.items():
        if name in DatasetCatalog.list():
            continue
        DatasetCatalog.register(name, functools.partial(_load_split, name, base))
        meta: Dict[str, Any] = dict(
            thing_classes=["text"], evaluator_type="text", polygon_format=split.polygon_format
        )
        if split.eval_gt_zip is not None:
            meta["eval_gt_zip"] = path(split.eval_gt_zip)
        if split.lexicons:
            meta["lexicons"] = {k: path(v) for k, v in split.lexicons.items()}
        MetadataCatalog.get(name).set(**meta)
    if "synthtext" not in DatasetCatalog.list():
        DatasetCatalog.register("synthtext", functools.partial(_load_synthtext, base))
        MetadataCatalog.get("synthtext").set(thing_classes=["text"], evaluator_type="text", polygon_format="quad")


def register_synthetic_datasets(root: Optional[str] = None) -> None:
    """Register `synth_text_train/val`; with `root=None` the root is read when the dataset is loaded."""
    for name, split in SYNTHETIC_SPLITS.items():
        if name in DatasetCatalog.list():
            continue
        DatasetCatalog.register(name, lambda root=root, split=split: _load_synthetic(root, split))
        MetadataCatalog.get(name).set(thing_classes=["text"], evaluator_type="text", polygon_format="polygon")


def _load_synthetic(root: Optional[str], split: str):
    from .synthetic import load_synthetic_split

    return load_synthetic_split(root or datasets_root(), split)


register_synthetic_datasets()
register_text_datasets()
