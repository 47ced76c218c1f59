"""Character set and the token encoding of words for the attention recognizer."""
import logging
import string
from collections import Counter
from typing import Iterable, List, Optional, Sequence

import torch

__all__ = ["CharsetEncoder", "DEFAULT_CHARSET", "build_charset_encoder", "count_unencodable_words"]

logger = logging.getLogger(__name__)

# The 95 printable ASCII characters, space included (the reference's character list holds the same set).
DEFAULT_CHARSET = string.digits + " " + string.ascii_letters + string.punctuation


class CharsetEncoder:
    """
    Maps words to token ids and back.

    Token 0 is [GO] and also padding, token 1 is [s] (end of word), characters follow from 2.
    A word is encoded as `c1 ... cL [s]` padded with 0 to `max_length + 1` tokens, the length of the
    decoder's output sequence.
    """

    GO = 0
    PAD = 0
    EOS = 1

    def __init__(self, charset: str = "", max_length: int = 32, case_sensitive: bool = True):
        charset = charset or DEFAULT_CHARSET
        if not case_sensitive:
            # Upper-case letters read as their lower-case form: drop them from the classes, keep the order.
            charset = "".join(dict.fromkeys(c.lower() for c in charset))
        if len(set(charset)) != len(charset):
            dupes = sorted(c for c, n in Counter(charset).items() if n > 1)
            raise ValueError(f"charset has repeated characters: {dupes!r}")
        if max_length < 1:
            raise ValueError(f"max_length must be positive, got {max_length}")
        self.charset = charset
        self.max_length = max_length
        self.case_sensitive = case_sensitive
        self._index = {c: i + 2 for i, c in enumerate(charset)}

    @property
    def num_classes(self) -> int:
        """Classes of the decoder's output: [GO], [s] and the characters."""
        return len(self.charset) + 2

    @property
    def num_steps(self) -> int:
        """Decoder steps: every character plus the end token."""
        return self.max_length + 1

    def why_unencodable(self, word: str) -> Optional[str]:
        """None if `word` can be encoded, else "too_long", "unknown_char" or "empty"."""
        word = self._fold(word)
        if len(word) == 0:
            return "empty"
        if len(word) > self.max_length:
            return "too_long"
        if any(c not in self._index for c in word):
            return "unknown_char"
        return None

    def can_encode(self, word: str) -> bool:
        return self.why_unencodable(word) is None

    def encode(self, word: str) -> Optional[List[int]]:
        """Token ids of `word` (without padding), ending with [s]; None if it cannot be encoded."""
        if not self.can_encode(word):
            return None
        return [self._index[c] for c in self._fold(word)] + [self.EOS]

    def _fold(self, word: str) -> str:
        return word if self.case_sensitive else word.lower()

    def encode_batch(self, words: Sequence[str]) -> torch.Tensor:
        """
        LongTensor [len(words), max_length + 1]. A word that cannot be encoded gets a row of padding,
        which the recognition loss ignores.
        """
        out = torch.zeros((len(words), self.num_steps), dtype=torch.long)
        for i, word in enumerate(words):
            ids = self.encode(word)
            if ids is not None:
                out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """
        Text of a token sequence: characters up to the first [s]. A sequence without [s] keeps all its
        characters (the reference code drops the last one there); [GO]/padding tokens are skipped.
        """
        chars = []
        for i in ids:
            i = int(i)
            if i == self.EOS:
                break
            if i >= 2:
                chars.append(self.charset[i - 2])
        return "".join(chars)

    def decode_batch(self, ids: torch.Tensor) -> List[str]:
        return [self.decode(row.tolist()) for row in ids]


def build_charset_encoder(cfg) -> CharsetEncoder:
    """The encoder of `cfg.MODEL.TEXT_HEAD` (CHARSET, MAX_LENGTH, CASE_SENSITIVE): one for the data and the model."""
    head = cfg.MODEL.TEXT_HEAD
    return CharsetEncoder(head.CHARSET, head.MAX_LENGTH, head.CASE_SENSITIVE)


def count_unencodable_words(dataset_dicts: List[dict], encoder: CharsetEncoder, dataset_name: str) -> Counter:
    """
    Count the cared words of a dataset that the recognizer cannot read, and log the count once.
    They stay detection targets; only the recognition loss leaves them out.
    """
    reasons: Counter = Counter()
    total = 0
    for record in dataset_dicts:
        for ann in record.get("annotations", []):
            if ann.get("iscrowd", 0):
                continue
            total += 1
            reason = encoder.why_unencodable(ann.get("text", ""))
            if reason is not None:
                reasons[reason] += 1
    if reasons:
        logger.warning(
            f"{dataset_name}: {sum(reasons.values())} of {total} words cannot be encoded "
            f"({dict(reasons)}); they stay detection targets but are left out of the recognition loss."
        )
    else:
        logger.info(f"{dataset_name}: all {total} words can be encoded.")
    return reasons
