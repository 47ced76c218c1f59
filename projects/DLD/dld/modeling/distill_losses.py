"""
Loss terms of Dynamic Low-Resolution Distillation as pure functions (reference spec §2.5, §3, §7.2):

- Sequential Knowledge Distillation (SKD): L2 on the recognition RoI features and on the encoder hidden
  states, and sequence-level KD on the teacher's top-k beam sequences;
- the Dynamic Resolution Selector's (DRS) accuracy term (KL to the teacher, or the reference code's
  cross-entropy to the ground truth) and its cost term.

Token conventions follow :class:`dld.modeling.recognizer.AttentionDecoder`: 0 is [GO] and padding, 1 is [s].
On the CTC reading path (:class:`dld.modeling.ctc.CTCDecoder`) a sequence's log-probability is its CTC
log-likelihood, and the selector's terms run over the encoder's columns.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .ctc import CTCDecoder, ctc_loss_on_tokens

__all__ = [
    "feature_l2_loss",
    "sequence_log_probs",
    "sequence_kd_loss",
    "selector_accuracy_loss",
    "selector_cost_loss",
]


def feature_l2_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """
    Mean squared error over all elements, the teacher detached (reference `l2_loss`; its temperature cancels).

    Used for the recognition RoI features [N, C, 8, 32] and the encoder hidden states [N, T, C]. The paper
    normalises by H·W·C (resp. the hidden length); the reference code, followed here, also divides by the
    instance count N.

    Args:
        student, teacher: tensors of the same shape.

    Returns:
        scalar; a zero that keeps the graph to `student` when there are no elements.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"feature_l2_loss: shapes differ, {tuple(student.shape)} vs {tuple(teacher.shape)}")
    if student.numel() == 0:
        return student.sum() * 0.0
    return F.mse_loss(student, teacher.detach(), reduction="mean")


def _token_mask(sequences: torch.Tensor, eos: int) -> torch.Tensor:
    """
    [..., S] bool mask of the tokens up to and including the first `eos`; every position when there is none
    (the same tokens that `AttentionDecoder.beam_search` scores).
    """
    is_eos = (sequences == eos).long()
    eos_before = torch.cumsum(is_eos, dim=-1) - is_eos  # number of [s] strictly before position t
    return eos_before == 0


def sequence_log_probs(
    decoder: nn.Module, context: torch.Tensor, sequences: torch.Tensor, length_normalize: bool = False
) -> torch.Tensor:
    """
    The decoder's log-probability of given sequences, teacher-forced on them, accumulated in log space.

    Args:
        decoder: an :class:`AttentionDecoder` (`decoder(context, targets)` gives [M, S, V] logits).
        context: [N, T, C] encoder output.
        sequences: [N, K, S] token ids (0 after the first [s]).
        length_normalize: divide each sum by the number of scored tokens.

    Returns:
        [N, K] Σ_t log softmax(logits)[t, seq_t] over the tokens up to and including the first [s].
    """
    n, k, s = sequences.shape
    if n == 0 or k == 0:
        return context.new_zeros((n, k)) + context.sum() * 0.0
    flat = sequences.reshape(n * k, s)
    if isinstance(decoder, CTCDecoder):
        return _ctc_sequence_log_probs(decoder, context, flat, length_normalize).view(n, k)
    logits = decoder(context.repeat_interleave(k, dim=0), flat)  # [N*K, S, V]
    token_logp = torch.gather(F.log_softmax(logits.float(), dim=-1), 2, flat[..., None]).squeeze(-1)
    mask = _token_mask(flat, getattr(decoder, "eos", 1))
    total = (token_logp * mask).sum(dim=1)
    if length_normalize:
        total = total / mask.sum(dim=1).clamp(min=1)
    return total.view(n, k)


def _ctc_sequence_log_probs(
    decoder: CTCDecoder, context: torch.Tensor, flat: torch.Tensor, length_normalize: bool
) -> torch.Tensor:
    """[M] CTC log-likelihood (all paths) of each sequence's characters under the decoder's columns."""
    k = flat.shape[0] // max(context.shape[0], 1)
    log_probs = F.log_softmax(decoder(context).float(), dim=-1).repeat_interleave(k, dim=0).transpose(0, 1)
    chars = _token_mask(flat, decoder.eos) & (flat >= 2)
    lengths = chars.sum(dim=1)
    input_lengths = torch.full((flat.shape[0],), log_probs.shape[0], dtype=torch.long)
    nll = F.ctc_loss(
        log_probs, flat[chars], input_lengths, lengths, blank=decoder.blank, reduction="none", zero_infinity=True
    )
    total = -nll
    if length_normalize:
        total = total / (lengths + 1).to(total.dtype)  # the characters and the end, as the attention path counts
    return total


def sequence_kd_loss(
    student_decoder: nn.Module,
    student_context: torch.Tensor,
    teacher_sequences: torch.Tensor,
    teacher_log_probs: torch.Tensor,
    weighting: str = "probability",
    length_normalize: bool = False,
) -> torch.Tensor:
    """
    Sequence-level KD (paper's SKD): loss = mean_n −Σ_k w_{n,k} · log p_student(seq_{n,k}).

    The k sequences of each instance go through the student decoder in one teacher-forced batch. Weights:
    "probability" (the paper) = softmax over the instance's teacher sequence log-probabilities, i.e. the
    teacher's sequence probabilities renormalised over its top-k; "uniform" (the reference code, which uses
    top-1) = 1/k. Sequences that are all padding, or whose teacher score is not finite (a beam search wider
    than the vocabulary), get weight 0; the mean runs over the instances with at least one valid sequence.
    Unlike the reference's −log(Π p + 1e-5), the sum is in log space and never saturates.

    Args:
        student_decoder: the student's :class:`AttentionDecoder`.
        student_context: [N, T, C] student encoder output (carries the gradient).
        teacher_sequences: [N, K, S] teacher beam sequences, best first (`AttentionDecoder.beam_search`).
        teacher_log_probs: [N, K] their summed teacher log-probabilities.
        weighting: "probability" or "uniform".
        length_normalize: use the per-token mean log-probability of each sequence instead of the sum.

    Returns:
        scalar loss; a zero with a graph to the student when nothing is valid.
    """
    if weighting not in ("probability", "uniform"):
        raise ValueError(f"sequence_kd_loss: unknown weighting {weighting!r}")
    teacher_sequences = teacher_sequences.detach()
    teacher_log_probs = teacher_log_probs.detach().float()
    valid = (teacher_sequences != 0).any(dim=-1) & torch.isfinite(teacher_log_probs)  # [N, K]
    instance_valid = valid.any(dim=1)
    zero = student_context.sum() * 0.0 + sum(p.sum() * 0.0 for p in student_decoder.parameters())
    if not bool(instance_valid.any()):
        return zero
    # Only instances with a valid sequence go through the decoder.
    keep = instance_valid.nonzero().squeeze(1)
    sequences, scores, valid = teacher_sequences[keep], teacher_log_probs[keep], valid[keep]
    with torch.no_grad():
        if weighting == "probability":
            weights = torch.softmax(scores.masked_fill(~valid, float("-inf")), dim=1)
        else:
            weights = valid.float() / valid.sum(dim=1, keepdim=True)
        weights = weights.masked_fill(~valid, 0.0)
    log_p = sequence_log_probs(student_decoder, student_context[keep], sequences, length_normalize)
    per_instance = -(weights * log_p.masked_fill(~valid, 0.0)).sum(dim=1)
    return per_instance.mean() + zero


def _mixture_logits(
    student_logits_per_scale: torch.Tensor, onehot: torch.Tensor, image_index: torch.Tensor
) -> torch.Tensor:
    """
    ẑ_n = Σ_k onehot[image_index[n], k] · z_{k,n}, with a forward value equal to z at the chosen (argmax)
    scale bit for bit and the mixture's gradient w.r.t. `onehot`.
    """
    weights = onehot[image_index].to(student_logits_per_scale.dtype)  # [N, K]
    mixture = torch.einsum("nk,knsv->nsv", weights, student_logits_per_scale)
    chosen = onehot.detach().argmax(dim=1)[image_index]  # [N]
    n = torch.arange(image_index.shape[0], device=image_index.device)
    selected = student_logits_per_scale[chosen, n]  # [N, S, V]
    return selected + (mixture - mixture.detach())


def selector_accuracy_loss(
    student_logits_per_scale: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    onehot: torch.Tensor,
    image_index: torch.Tensor,
    mode: str = "kl",
) -> torch.Tensor:
    """
    DRS accuracy term on the straight-through mixture of the student's logits over the candidate scales.

    Forward equals the loss at each image's chosen scale (`onehot` must be one-hot in value, e.g. a hard
    Gumbel-softmax); backward reaches `onehot` through Σ_k onehot_k · z_k, hence the selector's logits.

    Args:
        student_logits_per_scale: [K, N, S, V] teacher-forced student logits on the GT words at each scale
            (computed without grad).
        teacher_logits: [N, S, V] teacher-forced teacher logits (used by "kl" only).
        targets: [N, S] GT tokens; padding 0 is ignored.
        onehot: [B, K] the selector's straight-through one-hot per image.
        image_index: [N] the image of each instance.
        mode: "kl" (the paper): KL(softmax(teacher) ‖ softmax(ẑ)) summed over V, mean over non-padding tokens;
            "ce" (the reference code): cross-entropy of ẑ to `targets`, ignore_index 0, token mean.

    Returns:
        scalar; `onehot.sum() * 0` (a zero with a graph to the selector) when there is no scored token.
    """
    if mode not in ("kl", "ce"):
        raise ValueError(f"selector_accuracy_loss: unknown mode {mode!r}")
    zero = onehot.sum() * 0.0
    mask = targets != 0
    if targets.shape[0] == 0 or not bool(mask.any()):
        return zero
    z_hat = _mixture_logits(student_logits_per_scale.detach(), onehot, image_index.long())
    log_q = F.log_softmax(z_hat.float(), dim=-1)
    # CTC logits have a column per encoder step, not a step per token: every column of a word counts.
    columns = log_q.shape[1] != targets.shape[1]
    if mode == "ce" and columns:
        loss = ctc_loss_on_tokens(log_q, targets)
    elif mode == "ce":
        loss = F.nll_loss(log_q.flatten(0, 1), targets.flatten(), ignore_index=0, reduction="mean")
    else:
        if columns:
            mask = mask.any(dim=1, keepdim=True).expand(-1, log_q.shape[1])
        log_p = F.log_softmax(teacher_logits.detach().float(), dim=-1)
        kl = F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(dim=-1)  # [N, S or T]
        loss = (kl * mask).sum() / mask.sum()
    return loss + zero


def selector_cost_loss(onehot: torch.Tensor, normalized_cost: torch.Tensor, gamma: float) -> torch.Tensor:
    """
    DRS cost term γ · mean_b Σ_k onehot[b, k] · cost[b, k].

    Args:
        onehot: [B, K] straight-through one-hot per image.
        normalized_cost: [B, K] or [K] cost per scale (normalised FLOPs, or the reference's s^1.5).
        gamma: weight (0.1 and 0.3 are the released settings).

    Returns:
        scalar; a zero with a graph to `onehot` when B = 0.
    """
    if onehot.shape[0] == 0:
        return onehot.sum() * 0.0
    cost = normalized_cost.detach().to(device=onehot.device, dtype=onehot.dtype)
    return gamma * (onehot * cost).sum(dim=1).mean()
