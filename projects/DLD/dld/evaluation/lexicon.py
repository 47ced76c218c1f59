"""
Lexicons for end-to-end text spotting: reading the ICDAR / Total-Text word lists and the nearest-word rule.

The rule of the offline protocol: a predicted word of 3 or more characters that contains no digit and no ``+``
(regex ``[0-9+]``) is replaced by the lexicon word at the smallest Levenshtein distance, compared after
``str.upper()`` on both sides. There is no distance threshold, the *first* word at the minimum distance in the
lexicon's file order wins, and the replacement is written with the lexicon's own case. Other words are kept.

Kinds: ``strong`` is one small lexicon per image (``voc_img_<N>.txt`` files in a directory or in a zip, e.g.
``strong_lexicon/voc_img_<N>.txt``); every other kind (``weak``, ``generic``, ``full``, ...) is one text file
for the whole test set. Files are UTF-8 (an optional BOM is dropped), one word per line, stripped, blank lines
skipped.
"""
import logging
import os
import re
import zipfile
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence, Union

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

__all__ = [
    "LEXICON_KINDS",
    "Lexicon",
    "load_lexicons",
    "nearest_words",
    "read_word_list",
    "read_per_image_lexicons",
    "should_correct",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

# Report order of the known kinds; "strong" is the only per-image kind.
LEXICON_KINDS = ("strong", "weak", "generic", "full")
PER_IMAGE_KINDS = frozenset({"strong"})

MIN_CORRECTED_LENGTH = 3
_NOT_CORRECTED = re.compile(r"[0-9+]")
_VOC_FILE = re.compile(r"voc_img_?([0-9]+)\.txt$", re.IGNORECASE)
# Bounds the [queries, lexicon] int32 distance block computed at once (about 64 MB).
_MAX_BLOCK_CELLS = 16_000_000


def should_correct(word: str) -> bool:
    """Whether the nearest-word rule rewrites `word`: length >= 3 and no digit or `+`."""
    return len(word) >= MIN_CORRECTED_LENGTH and _NOT_CORRECTED.search(word) is None


def _split_words(content: str) -> List[str]:
    if content.startswith("\ufeff"):
        content = content[1:]
    return [w for w in (line.strip() for line in content.splitlines()) if w]


def read_word_list(path: PathLike) -> List[str]:
    """Words of a lexicon text file in file order (UTF-8, optional BOM, stripped, blank lines skipped)."""
    with open(path, "rb") as f:
        return _split_words(_decode(f.read(), os.fspath(path)))


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{source}: not UTF-8 at byte {e.start} ({e.reason})") from None


def read_per_image_lexicons(path: PathLike) -> Dict[int, List[str]]:
    """
    Per-image lexicons from a directory or a zip of ``voc_img_<N>.txt`` files (at any depth in a zip).

    Returns:
        image number N -> words in file order.
    """
    out: Dict[int, List[str]] = {}
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            m = _VOC_FILE.search(name)
            if m:
                out[int(m.group(1))] = read_word_list(os.path.join(path, name))
        return out
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{os.fspath(path)}: a per-image lexicon is a folder or a zip, this is neither ({e})") from None
    with zf:
        for name in zf.namelist():
            m = _VOC_FILE.search(os.path.basename(name))
            if m and not name.endswith("/"):
                out[int(m.group(1))] = _split_words(_decode(zf.read(name), f"{os.fspath(path)}:{name}"))
    return out


def nearest_words(queries: Sequence[str], lexicon: Sequence[str], workers: int = 1) -> List[str]:
    """
    For each query, the lexicon word at the minimum case-insensitive Levenshtein distance; the first such word
    in lexicon order wins ties. Every query is matched (callers apply :func:`should_correct`).

    Distances are computed with `rapidfuzz.process.cdist` in blocks of queries; `np.argmin` returns the first
    minimum, which is what makes ties deterministic.

    Args:
        queries: words to match (duplicates are matched once).
        lexicon: candidate words, in file order, written back with their own case.
        workers: threads of `cdist` (-1: all cores).
    """
    if not lexicon:
        raise ValueError("nearest_words needs a non-empty lexicon")
    keys = [w.upper() for w in lexicon]
    unique = list(dict.fromkeys(q.upper() for q in queries))
    best: Dict[str, str] = {}
    block = max(1, _MAX_BLOCK_CELLS // len(keys))
    for start in range(0, len(unique), block):
        chunk = unique[start : start + block]
        dist = process.cdist(chunk, keys, scorer=Levenshtein.distance, dtype=np.int32, workers=workers)
        for q, j in zip(chunk, np.argmin(dist, axis=1)):
            best[q] = lexicon[int(j)]
    return [best[q.upper()] for q in queries]


class Lexicon:
    """
    One lexicon setting: a single word list for the whole test set, or one word list per image (`strong`).

    Attributes:
        kind: the setting's name ("strong", "weak", "generic", "full", ...), used in the metric keys.
        words: the global word list (None for a per-image lexicon).
        per_image: image number -> word list (None for a global lexicon).
    """

    def __init__(
        self,
        kind: str,
        words: Optional[Sequence[str]] = None,
        per_image: Optional[Mapping[int, Sequence[str]]] = None,
        workers: int = 1,
    ):
        if (words is None) == (per_image is None):
            raise ValueError("give exactly one of `words` and `per_image`")
        self.kind = kind
        self.words = list(words) if words is not None else None
        self.per_image = {int(k): list(v) for k, v in per_image.items()} if per_image is not None else None
        self.workers = workers

    @classmethod
    def from_path(cls, kind: str, path: PathLike, workers: int = 1) -> "Lexicon":
        """Read a lexicon: per-image (directory or zip) for "strong", one text file for every other kind."""
        if kind in PER_IMAGE_KINDS:
            return cls(kind, per_image=read_per_image_lexicons(path), workers=workers)
        return cls(kind, words=read_word_list(path), workers=workers)

    def __repr__(self) -> str:
        size = f"{len(self.per_image)} images" if self.per_image is not None else f"{len(self.words)} words"
        return f"Lexicon({self.kind!r}, {size})"

    def correct(self, texts_by_image: Mapping[Hashable, Sequence[str]]) -> Dict[Hashable, List[str]]:
        """
        Apply the nearest-word rule to every predicted word.

        Args:
            texts_by_image: image key -> predicted words. For a per-image lexicon the key must be the image
                number N of ``voc_img_<N>.txt`` (an int or a numeric string); images without a lexicon keep
                their words (one warning).

        Returns:
            The same keys, with the corrected words.
        """
        out: Dict[Hashable, List[str]] = {}
        if self.words is not None:
            todo = [t for texts in texts_by_image.values() for t in texts if should_correct(t)]
            table = dict(zip(todo, nearest_words(todo, self.words, self.workers))) if self.words else {}
            for key, texts in texts_by_image.items():
                out[key] = [table.get(t, t) for t in texts]
            return out

        missing = []
        for key, texts in texts_by_image.items():
            words = self.per_image.get(_image_number(key))
            todo = [t for t in texts if should_correct(t)]
            if not words:
                if todo:
                    missing.append(key)
                out[key] = list(texts)
                continue
            table = dict(zip(todo, nearest_words(todo, words, self.workers)))
            out[key] = [table.get(t, t) for t in texts]
        if missing:
            logger.warning(
                f"{self.kind} lexicon: no word list for {len(missing)} image(s) (e.g. {missing[0]!r}); "
                "their words are left uncorrected"
            )
        return out


def _image_number(key: Any) -> Optional[int]:
    if isinstance(key, (int, np.integer)):
        return int(key)
    if isinstance(key, str) and key.strip().isdigit():
        return int(key)
    return None


def load_lexicons(paths: Optional[Mapping[str, PathLike]], workers: int = 1) -> List[Lexicon]:
    """
    Read the lexicons of a dataset, kind -> path, in the report order of :data:`LEXICON_KINDS` (other kinds
    after them, sorted). A kind whose file or directory is missing (or empty path) is skipped with one warning.
    """
    if not paths:
        return []
    order = {k: i for i, k in enumerate(LEXICON_KINDS)}
    out = []
    for kind in sorted(paths, key=lambda k: (order.get(k, len(order)), k)):
        path = paths[kind]
        if not path or not os.path.exists(path):
            logger.warning(f"{kind} lexicon {path!r} not found; the {kind} lexicon metrics are skipped")
            continue
        out.append(Lexicon.from_path(kind, path, workers=workers))
    return out
