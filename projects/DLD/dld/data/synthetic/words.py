"""Transcriptions: English words from wordfreq, numbers, case changes and punctuation."""
import functools
from typing import Tuple

import numpy as np

from .config import MAX_WORD_LENGTH, PRINTABLE_ASCII


@functools.lru_cache(maxsize=1)
def _vocabulary() -> Tuple[np.ndarray, np.ndarray]:
    """Words from wordfreq's top-20000 English list (letters and apostrophes only) and their lengths."""
    from wordfreq import top_n_list

    words = [
        w
        for w in top_n_list("en", 20000)
        if 2 <= len(w) <= MAX_WORD_LENGTH - 2 and all(c in PRINTABLE_ASCII for c in w) and w.replace("'", "").isalpha()
    ]
    return np.array(words), np.array([len(w) for w in words])


def _sample_number(rng: np.random.Generator) -> str:
    kind = rng.integers(6)
    if kind == 0:
        return f"${rng.integers(1, 1000)}.{rng.integers(100):02d}"
    if kind == 1:
        return str(rng.integers(1900, 2031))
    if kind == 2:
        return f"{rng.integers(200, 1000)}-{rng.integers(10000):04d}"
    if kind == 3:
        return f"{rng.integers(1, 100)}%"
    if kind == 4:
        return f"{rng.integers(1, 13)}:{rng.integers(60):02d}"
    return str(rng.integers(0, 10 ** rng.integers(1, 5)))


_PUNCT_TEMPLATES = ("{}!", "({})", '"{}"', "{},", "{}.", "{}?", "{}:", "#{}", "'{}'", "{};", "{}-", "@{}", "*{}*")


def _sample_text(rng: np.random.Generator, max_chars: int) -> str:
    """A transcription of at most `max_chars` (≥ 2) printable ASCII characters."""
    words, lengths = _vocabulary()
    kind = rng.random()
    if kind < 0.08:
        text = _sample_number(rng)
        if len(text) <= max_chars:
            return text
    wrap = kind > 0.88 and max_chars >= 4
    word_max = max_chars - 2 if wrap else max_chars
    candidates = np.flatnonzero(lengths <= max(word_max, 2))
    word = str(words[candidates[rng.integers(len(candidates))]])
    case = rng.random()
    if case < 0.2:
        word = word.upper()
    elif case < 0.45:
        word = word[0].upper() + word[1:]
    if wrap:
        word = _PUNCT_TEMPLATES[rng.integers(len(_PUNCT_TEMPLATES))].format(word)
    return word[:max_chars]
