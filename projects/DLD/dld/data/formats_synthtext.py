"""
SynthText ground truth (``gt.mat``) and its compact cache. Import the public names from :mod:`dld.data.formats`.

``gt.mat`` of the full dataset (858,750 images, 7.3M words) takes minutes and many GB to load with
``scipy.io.loadmat``, so :func:`load_synthtext_gt` converts it once into an ``.npz`` (flat float32 boxes, UTF-8
words, per-image offsets and, optionally, the image sizes) keyed by the ``gt.mat`` size and mtime; later loads
read the ``.npz`` in seconds. Polygons are kept as annotated (they may leave the image or be degenerate);
clipping is left to the consumer.
"""
import hashlib
import io
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from .formats_base import AnnotationFormatError, AnnotationList, PathLike, make_word, read_bytes, source_name
from .formats_totaltext import mat_strings

__all__ = ["SynthTextGT", "parse_synthtext_gt", "load_synthtext_gt", "synthtext_cache_path"]

logger = logging.getLogger(__name__)

_CACHE_VERSION = 1


@dataclass
class SynthTextGT:
    """
    The words of every SynthText image, flat: image ``i`` (``imnames[i]``, relative to the image root) owns
    ``boxes[offsets[i]:offsets[i + 1]]`` and the same slice of ``words``.

    Attributes:
        imnames: relative image paths such as ``"8/ballet_106_0.jpg"``.
        offsets: int64 [N + 1].
        boxes: float32 [W, 4, 2], the word quadrilaterals, clockwise from the top-left.
        words: W transcriptions (SynthText has no don't-care words).
        sizes: int32 [N, 2] ``(height, width)`` of each image, or None when not read.
        num_skipped: images dropped in lenient mode.
    """

    imnames: List[str]
    offsets: np.ndarray
    boxes: np.ndarray
    words: List[str]
    sizes: Optional[np.ndarray] = None
    num_skipped: int = 0

    def __len__(self) -> int:
        return len(self.imnames)

    def annotations(self, index: int) -> AnnotationList:
        """The words of image ``index`` as parser dicts (``polygon`` float64 [4, 2], ``text``, ``ignore``)."""
        lo, hi = int(self.offsets[index]), int(self.offsets[index + 1])
        return AnnotationList(make_word(self.boxes[j], self.words[j], False) for j in range(lo, hi))


def _fail(name: str, message: str, lenient: bool) -> None:
    if not lenient:
        raise AnnotationFormatError(f"{name}: {message}")
    logger.warning("Skipping a SynthText image: %s: %s", name, message)


def parse_synthtext_gt(source: PathLike, lenient: bool = False, name: Optional[str] = None) -> SynthTextGT:
    """
    Read SynthText's ``gt.mat`` (no cache; see :func:`load_synthtext_gt`).

    ``wordBB[i]`` is 2x4xn (2x4 for a single word) and ``txt[i]`` a list of strings whose
    whitespace-separated tokens are the n words, in order; a count that differs from n is an error naming
    the image (in lenient mode the image is skipped, logged and counted). ``charBB`` is not read.
    """
    from scipy.io import loadmat

    name = source_name(source, name)
    data = io.BytesIO(read_bytes(source)) if isinstance(source, (bytes, bytearray)) else source
    try:
        mat = loadmat(data, variable_names=("imnames", "wordBB", "txt"))
    except Exception as e:  # scipy raises several types for a file that is not a MATLAB file
        raise AnnotationFormatError(f"{name}: not a readable MATLAB file ({type(e).__name__}: {e})") from e
    missing = [k for k in ("imnames", "wordBB", "txt") if k not in mat]
    if missing:
        raise AnnotationFormatError(f"{name}: no {missing} variable(s); is this SynthText's gt.mat?")
    imnames_cells, wordbb_cells, txt_cells = (np.asarray(mat[k]).ravel() for k in ("imnames", "wordBB", "txt"))
    if not len(imnames_cells) == len(wordbb_cells) == len(txt_cells):
        raise AnnotationFormatError(
            f"{name}: imnames, wordBB and txt have {len(imnames_cells)}, {len(wordbb_cells)} and "
            f"{len(txt_cells)} entries"
        )

    imnames: List[str] = []
    boxes: List[np.ndarray] = []
    words: List[str] = []
    counts: List[int] = []
    num_skipped = 0
    for i, (imname_cell, bb_cell, txt_cell) in enumerate(zip(imnames_cells, wordbb_cells, txt_cells)):
        try:
            imname: Optional[str] = " ".join(mat_strings(imname_cell)).strip()
        except ValueError:
            imname = None
        where = f"image {i} ({imname!r})" if imname else f"image {i}"
        try:
            bb = np.asarray(bb_cell, dtype=np.float64)
            if bb.size == 0:
                bb = np.zeros((2, 4, 0))
            elif bb.ndim == 2:
                bb = bb[:, :, None]  # a single word is stored 2x4
            if bb.ndim != 3 or bb.shape[:2] != (2, 4):
                raise ValueError(f"wordBB has shape {bb.shape}; expected (2, 4, n)")
            image_words = " ".join(mat_strings(txt_cell)).split()
            if not imname:
                raise ValueError("its imnames entry is not a file name")
            if len(image_words) != bb.shape[2]:
                raise ValueError(f"txt holds {len(image_words)} words but wordBB {bb.shape[2]} boxes")
        except (ValueError, TypeError) as e:
            _fail(name, f"{where}: {e}", lenient)
            num_skipped += 1
            continue
        imnames.append(imname)
        boxes.append(bb.transpose(2, 1, 0).astype(np.float32))
        words.extend(image_words)
        counts.append(len(image_words))
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = np.concatenate(boxes) if boxes else np.zeros((0, 4, 2), np.float32)
    return SynthTextGT(imnames, offsets, flat, words, num_skipped=num_skipped)


# ---------------------------------------------------------------------------------------------- cache
def synthtext_cache_path(gt_mat: PathLike, cache_dir: Optional[PathLike] = None) -> str:
    """``<gt.mat dir>/gt.dld-cache.npz``, or a name derived from the absolute ``gt.mat`` path in ``cache_dir``."""
    gt_mat = os.fspath(gt_mat)
    if cache_dir is None:
        return os.path.splitext(gt_mat)[0] + ".dld-cache.npz"
    digest = hashlib.sha1(os.path.abspath(gt_mat).encode()).hexdigest()[:12]
    return os.path.join(os.fspath(cache_dir), f"synthtext-gt-{digest}.npz")


def _utf8(strings: List[str]) -> np.ndarray:
    return np.frombuffer("\n".join(strings).encode("utf-8"), dtype=np.uint8)


def _strings(array: np.ndarray, count: int) -> List[str]:
    strings = array.tobytes().decode("utf-8").split("\n") if count else []
    if len(strings) != count:
        raise ValueError(f"expected {count} strings, found {len(strings)}")
    return strings


def _write_cache(path: str, key: str, gt: SynthTextGT) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    arrays = dict(
        key=np.array(key),
        imnames=_utf8(gt.imnames),
        offsets=gt.offsets,
        boxes=gt.boxes,
        words=_utf8(gt.words),
        num_skipped=np.array(gt.num_skipped),
    )
    if gt.sizes is not None:
        arrays["sizes"] = gt.sizes
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _read_cache(path: str, key: str) -> Optional[SynthTextGT]:
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["key"]) != key:
                logger.info("%s is stale (gt.mat or the options changed); converting again", path)
                return None
            offsets = npz["offsets"]
            return SynthTextGT(
                imnames=_strings(npz["imnames"], len(offsets) - 1),
                offsets=offsets,
                boxes=npz["boxes"],
                words=_strings(npz["words"], int(offsets[-1])),
                sizes=npz["sizes"] if "sizes" in npz.files else None,
                num_skipped=int(npz["num_skipped"]),
            )
    except Exception as e:  # a truncated or foreign file: rebuild it
        logger.warning("Ignoring unreadable SynthText cache %s (%s: %s)", path, type(e).__name__, e)
        return None


def _image_size(path: str) -> Optional[tuple]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except OSError:
        return None


def _read_sizes(gt: SynthTextGT, image_root: str, name: str, lenient: bool) -> SynthTextGT:
    paths = [os.path.join(image_root, imname) for imname in gt.imnames]
    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(_image_size, paths, chunksize=256))
    bad = [i for i, s in enumerate(sizes) if s is None]
    if bad:
        message = (
            f"{len(bad)} image(s) listed in {name} are missing or unreadable under {image_root}, "
            f"e.g. {paths[bad[0]]}"
        )
        if not lenient:
            raise FileNotFoundError(message)
        logger.warning("Skipping them: %s", message)
        keep = np.ones(len(gt), dtype=bool)
        keep[bad] = False
        counts = np.diff(gt.offsets)
        word_keep = np.repeat(keep, counts)
        offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
        np.cumsum(counts[keep], out=offsets[1:])
        gt = SynthTextGT(
            imnames=[n for n, k in zip(gt.imnames, keep) if k],
            offsets=offsets,
            boxes=gt.boxes[word_keep],
            words=[w for w, k in zip(gt.words, word_keep) if k],
            num_skipped=gt.num_skipped + len(bad),
        )
        sizes = [s for s in sizes if s is not None]
    gt.sizes = np.asarray(sizes, dtype=np.int32).reshape(-1, 2)
    return gt


def load_synthtext_gt(
    gt_mat: PathLike,
    image_root: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    lenient: bool = False,
) -> SynthTextGT:
    """
    :func:`parse_synthtext_gt` through a cache built on the first call (see the module docstring).

    Args:
        gt_mat: path of ``gt.mat``.
        image_root: when given, the ``(height, width)`` of every image is read from its header once and
            cached too (``sizes``); a missing image raises FileNotFoundError, or is skipped when ``lenient``.
        cache_dir: where the cache goes; None puts ``gt.dld-cache.npz`` next to ``gt.mat``. A cache that
            cannot be written is only a warning.
        lenient: skip bad images instead of raising. A cache built leniently with skips is not used by a
            strict call, so strict calls still report the errors.
    """
    gt_mat = os.fspath(gt_mat)
    stat = os.stat(gt_mat)
    root = os.path.abspath(image_root) if image_root is not None else ""
    key = f"v{_CACHE_VERSION} size={stat.st_size} mtime_ns={stat.st_mtime_ns} images={root}"
    cache = synthtext_cache_path(gt_mat, cache_dir)
    gt = _read_cache(cache, key)
    if gt is not None and (lenient or gt.num_skipped == 0):
        return gt

    start = time.perf_counter()
    logger.info("Converting %s into %s (done once; the full SynthText takes minutes) ...", gt_mat, cache)
    gt = parse_synthtext_gt(gt_mat, lenient)
    if image_root is not None:
        gt = _read_sizes(gt, root, gt_mat, lenient)
    try:
        _write_cache(cache, key, gt)
    except OSError as e:
        logger.warning("Could not write the SynthText cache %s (%s); gt.mat will be read again next time", cache, e)
    logger.info(
        "SynthText: %d images, %d words (%d images skipped) in %.1fs",
        len(gt), len(gt.words), gt.num_skipped, time.perf_counter() - start,
    )
    return gt
