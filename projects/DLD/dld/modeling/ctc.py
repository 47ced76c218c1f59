"""A CTC reading head with the attention decoder's interface: logits, greedy decoding and prefix beam search."""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CTCDecoder", "collapse_best_paths", "ctc_loss_on_tokens"]


def ctc_loss_on_tokens(log_probs: torch.Tensor, targets: torch.Tensor, blank: int = 0) -> torch.Tensor:
    """
    CTC loss of per-column log-probabilities [N, T, V] on token targets [N, S] (`c1 ... cL [s] 0 ...`,
    characters from 2), averaged over the words that have characters; a zero with the graph when none has.
    """
    chars = targets * (targets >= 2)
    lengths = (chars > 0).sum(dim=1)
    valid = lengths > 0
    if not bool(valid.any()):
        return log_probs.sum() * 0.0
    columns = log_probs[valid].transpose(0, 1)  # [T, N, V]
    input_lengths = torch.full((columns.shape[1],), columns.shape[0], dtype=torch.long)
    flat = chars[valid][chars[valid] > 0]
    return F.ctc_loss(columns, flat, input_lengths, lengths[valid], blank=blank, zero_infinity=True)


def collapse_best_paths(paths: torch.Tensor, num_steps: int, blank: int = 0, eos: int = 1) -> torch.Tensor:
    """
    CTC best paths [N, T] (one class per column) → sequences [N, num_steps] in the attention decoder's format:
    repeats merged, blanks (and [s]) dropped, at most num_steps - 1 characters, then [s], then padding (0).
    """
    n = paths.shape[0]
    ids = paths.new_zeros((n, num_steps))
    for i, path in enumerate(paths.tolist()):
        chars, prev = [], blank
        for k in path:
            if k != prev and k != blank and k != eos:
                chars.append(k)
            prev = k
        chars = chars[: num_steps - 1] + [eos]
        ids[i, : len(chars)] = torch.as_tensor(chars, dtype=ids.dtype)
    return ids


class CTCDecoder(nn.Module):
    """
    A linear classifier over the encoder's columns, trained with CTC (blank = token 0, which is also [GO] and
    padding of the charset; token 1, [s], is never emitted). Decoded sequences use the attention decoder's
    format: characters, then [s], then padding, `num_steps` tokens.
    """

    def __init__(self, channels: int, num_classes: int, num_steps: int, eos: int = 1, blank: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.num_steps = num_steps
        self.eos = eos
        self.blank = blank
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, context: torch.Tensor, targets: torch.Tensor = None) -> torch.Tensor:
        """Per-column logits [N, T, num_classes] (`targets` is accepted for the attention decoder's interface)."""
        return self.classifier(context)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """CTC loss on `targets` ([N, S] tokens `c1 ... cL [s] 0 ...`), averaged over words with characters."""
        return ctc_loss_on_tokens(F.log_softmax(logits.float(), dim=-1), targets, self.blank)

    def _to_sequences(self, paths: torch.Tensor) -> torch.Tensor:
        """Best paths [N, T] → collapsed sequences [N, num_steps] ending in [s]."""
        return collapse_best_paths(paths, self.num_steps, self.blank, self.eos)

    @torch.no_grad()
    def greedy(self, context: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Returns:
            ids: [N, num_steps] the collapsed best path.
            log_probs: [N] log-probability of the best path (summed over the columns).
        """
        log_probs = F.log_softmax(self.forward(context), dim=-1)
        best, paths = log_probs.max(dim=-1)
        return self._to_sequences(paths), best.sum(dim=1)

    @torch.no_grad()
    def beam_search(self, context: torch.Tensor, beam_width: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        CTC prefix beam search (a prefix's probability summed over its paths ending in a blank or a character).

        Returns:
            sequences: [N, K, num_steps] token ids (characters, [s], padding), best first; missing beams are
                all padding with log-probability -inf.
            log_probs: [N, K] log-probability of each prefix.
        """
        log_probs = F.log_softmax(self.forward(context), dim=-1).cpu()
        n, k = log_probs.shape[0], beam_width
        sequences = torch.zeros((n, k, self.num_steps), dtype=torch.long)
        scores = torch.full((n, k), float("-inf"))
        for i in range(n):
            ranked = self._prefix_beams(log_probs[i].tolist(), k)
            for j, (prefix, score) in enumerate(ranked):
                chars = list(prefix[: self.num_steps - 1]) + [self.eos]
                sequences[i, j, : len(chars)] = torch.as_tensor(chars)
                scores[i, j] = score
        return sequences.to(context.device), scores.to(context.device)

    def _prefix_beams(self, columns, k: int):
        """The k best (prefix, log-probability) of one word's [T, V] column log-probabilities."""
        beams = {(): (0.0, _NEG_INF)}  # prefix -> (log p of paths ending in blank, ... ending in a character)
        for row in columns:
            # Only the likeliest characters of a column can extend a prefix within the beam.
            top = sorted(range(len(row)), key=row.__getitem__, reverse=True)[: k + 1]
            nxt = {}

            def add(prefix, blank, char):
                b0, c0 = nxt.get(prefix, (_NEG_INF, _NEG_INF))
                nxt[prefix] = (_logaddexp(b0, blank), _logaddexp(c0, char))

            for prefix, (pb, pc) in beams.items():
                total = _logaddexp(pb, pc)
                add(prefix, total + row[self.blank], _NEG_INF)
                for c in top:
                    if c in (self.blank, self.eos):
                        continue
                    if prefix and prefix[-1] == c:
                        add(prefix, _NEG_INF, pc + row[c])  # repeated without a blank: the same prefix
                        add(prefix + (c,), _NEG_INF, pb + row[c])
                    else:
                        add(prefix + (c,), _NEG_INF, total + row[c])
            beams = dict(sorted(nxt.items(), key=lambda kv: -_logaddexp(*kv[1]))[:k])
        return sorted(((p, _logaddexp(*v)) for p, v in beams.items()), key=lambda pv: -pv[1])


_NEG_INF = float("-inf")


def _logaddexp(a: float, b: float) -> float:
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))
