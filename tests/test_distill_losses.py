import math

import pytest
import torch
import torch.nn.functional as F

from dld.modeling.distill_losses import (
    feature_l2_loss,
    selector_accuracy_loss,
    selector_cost_loss,
    sequence_kd_loss,
    sequence_log_probs,
)
from dld.modeling.recognizer import AttentionDecoder


pytestmark = pytest.mark.usefixtures("single_thread")


# ----------------------------------------------------------------------------------------------------------
# feature L2
def test_feature_l2_hand_value_and_gradients():
    student = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    teacher = torch.tensor([[0.0, 2.0], [1.0, 7.0]], requires_grad=True)
    loss = feature_l2_loss(student, teacher)
    assert loss.item() == pytest.approx((1 + 0 + 4 + 9) / 4)
    loss.backward()
    assert torch.allclose(student.grad, 2 * (student - teacher).detach() / 4)
    assert teacher.grad is None


def test_feature_l2_shapes_of_the_recognition_branch():
    torch.manual_seed(0)
    s, t = torch.randn(3, 4, 8, 32), torch.randn(3, 4, 8, 32)
    assert feature_l2_loss(s, t).item() == pytest.approx(((s - t) ** 2).mean().item(), rel=1e-6)


def test_feature_l2_empty():
    student = torch.zeros(0, 4, 8, 32, requires_grad=True)
    loss = feature_l2_loss(student, torch.zeros(0, 4, 8, 32))
    assert loss.item() == 0.0 and not torch.isnan(loss)
    assert loss.requires_grad
    loss.backward()
    assert student.grad is not None


# ----------------------------------------------------------------------------------------------------------
# sequence KD
def _decoder(seed: int, channels: int = 8, classes: int = 7, steps: int = 6) -> AttentionDecoder:
    torch.manual_seed(seed)
    return AttentionDecoder(channels=channels, num_classes=classes, num_steps=steps).eval()


def test_sequence_log_prob_equals_beam_score():
    decoder = _decoder(0)
    torch.manual_seed(1)
    context = torch.randn(4, 5, 8)
    sequences, scores = decoder.beam_search(context, beam_width=3)
    log_p = sequence_log_probs(decoder, context, sequences)
    assert torch.allclose(log_p, scores, atol=1e-4)
    # −loss with k = 1 (weight 1) is the mean log-probability of the best beam.
    loss = sequence_kd_loss(decoder, context, sequences[:, :1], scores[:, :1])
    assert loss.item() == pytest.approx(-scores[:, 0].mean().item(), abs=1e-4)
    uniform = sequence_kd_loss(decoder, context, sequences[:, :1], scores[:, :1], weighting="uniform")
    assert uniform.item() == pytest.approx(loss.item(), abs=1e-6)


def test_sequence_log_prob_counts_tokens_up_to_first_eos():
    decoder = _decoder(2)
    torch.manual_seed(3)
    context = torch.randn(1, 5, 8)
    seq = torch.tensor([[[3, 4, 1, 0, 0, 0]]])
    logits = decoder(context, seq[0])
    logp = F.log_softmax(logits, dim=-1)[0]
    expected = logp[0, 3] + logp[1, 4] + logp[2, 1]
    assert sequence_log_probs(decoder, context, seq)[0, 0].item() == pytest.approx(expected.item(), abs=1e-5)
    normalized = sequence_log_probs(decoder, context, seq, length_normalize=True)
    assert normalized[0, 0].item() == pytest.approx(expected.item() / 3, abs=1e-5)


def test_sequence_kd_probability_weighting_by_hand():
    teacher, student = _decoder(0), _decoder(5)
    torch.manual_seed(1)
    context = torch.randn(2, 5, 8)
    sequences, scores = teacher.beam_search(context, beam_width=2)
    scores = scores + torch.tensor([[0.0, 0.5], [0.0, -1.0]])  # make the weights clearly non-uniform
    log_p = sequence_log_probs(student, context, sequences)
    loss = sequence_kd_loss(student, context, sequences, scores)
    expected = 0.0
    for n in range(2):
        a, b = scores[n].tolist()
        wa = math.exp(a) / (math.exp(a) + math.exp(b))
        expected += -(wa * log_p[n, 0] + (1 - wa) * log_p[n, 1]).item()
    assert loss.item() == pytest.approx(expected / 2, abs=1e-5)
    uniform = sequence_kd_loss(student, context, sequences, scores, weighting="uniform")
    assert uniform.item() == pytest.approx(-(log_p.mean(dim=1)).mean().item(), abs=1e-5)
    assert abs(uniform.item() - loss.item()) > 1e-4


def test_sequence_kd_all_padding_sequences_get_zero_weight():
    teacher, student = _decoder(0), _decoder(5)
    torch.manual_seed(1)
    context = torch.randn(3, 5, 8)
    sequences, scores = teacher.beam_search(context, beam_width=2)
    reference = sequence_kd_loss(student, context, sequences[:, :1], scores[:, :1])
    padded = sequences.clone()
    padded[:, 1] = 0
    padded_scores = scores.clone()
    padded_scores[:, 1] = 10.0  # a high score must not matter for an empty sequence
    loss = sequence_kd_loss(student, context, padded, padded_scores)
    assert loss.item() == pytest.approx(reference.item(), abs=1e-5)
    # An instance whose sequences are all padding contributes nothing (not even to the mean).
    padded[0] = 0
    loss = sequence_kd_loss(student, context, padded, padded_scores)
    expected = sequence_kd_loss(student, context[1:], sequences[1:, :1], scores[1:, :1])
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    # Everything padding, or no instance: a finite zero with a graph.
    for ctx, seq, sc in ((context, torch.zeros_like(padded), padded_scores), (context[:0], padded[:0], scores[:0])):
        ctx = ctx.clone().requires_grad_(True)
        zero = sequence_kd_loss(student, ctx, seq, sc)
        assert zero.item() == 0.0 and zero.requires_grad
        zero.backward()


def test_sequence_kd_training_raises_student_log_prob():
    teacher, student = _decoder(0), _decoder(7)
    torch.manual_seed(1)
    context = torch.randn(4, 5, 8)
    sequences, scores = teacher.beam_search(context, beam_width=3)
    student.train()
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = sequence_kd_loss(student, context, sequences, scores)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
    final = sequence_kd_loss(student, context, sequences, scores).item()
    assert final < 0.5 * first


def test_sequence_kd_long_sequences_stay_finite():
    decoder = _decoder(0, classes=40, steps=30)
    torch.manual_seed(1)
    context = torch.randn(2, 5, 8, requires_grad=True)
    sequences = torch.randint(2, 40, (2, 3, 30))  # 30 tokens, no [s]: the product of probabilities underflows
    scores = torch.tensor([[-100.0, -110.0, -120.0], [-90.0, -95.0, -300.0]])
    loss = sequence_kd_loss(decoder, context, sequences, scores)
    assert torch.isfinite(loss) and loss.item() > 30 * 1.0
    loss.backward()
    assert torch.isfinite(context.grad).all() and context.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------------------------
# selector accuracy
def _selector_inputs(seed: int = 0, k: int = 3, n: int = 5, s: int = 6, v: int = 9, b: int = 2):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(k, n, s, v, generator=g)
    teacher = torch.randn(n, s, v, generator=g)
    targets = torch.randint(2, v, (n, s), generator=g)
    targets[0, 3:] = torch.tensor([1, 0, 0])
    targets[1, 2:] = torch.tensor([1, 0, 0, 0])
    image_index = torch.tensor([0, 0, 1, 1, 1])[:n]
    return student, teacher, targets, image_index


def _gumbel_onehot(seed: int, b: int = 2, k: int = 3):
    torch.manual_seed(seed)
    logits = torch.randn(b, k, requires_grad=True)
    return logits, F.gumbel_softmax(logits, tau=5.0, hard=True)


@pytest.mark.parametrize("mode", ["kl", "ce"])
def test_selector_forward_is_the_chosen_scale_and_grad_reaches_all_scales(mode):
    student, teacher, targets, image_index = _selector_inputs()
    logits, onehot = _gumbel_onehot(0)
    chosen = onehot.argmax(dim=1)
    loss = selector_accuracy_loss(student, teacher, targets, onehot, image_index, mode=mode)
    # The same loss with the chosen logits and an exact one-hot.
    exact = F.one_hot(chosen, 3).float()
    z_chosen = student[chosen[image_index], torch.arange(5)]
    plain = selector_accuracy_loss(z_chosen[None], teacher, targets, torch.ones(2, 1), image_index, mode=mode)
    assert loss.item() == plain.item()
    assert selector_accuracy_loss(student, teacher, targets, exact, image_index, mode=mode).item() == loss.item()
    loss.backward()
    assert (logits.grad.abs() > 0).all()


def test_selector_grad_wrt_onehot_is_inner_product_with_each_scale():
    student, teacher, targets, image_index = _selector_inputs()
    onehot = F.one_hot(torch.tensor([2, 0]), 3).float().requires_grad_(True)
    loss = selector_accuracy_loss(student, teacher, targets, onehot, image_index, mode="kl")
    loss.backward()
    z = (onehot.detach()[image_index].T[:, :, None, None] * student).sum(0).requires_grad_(True)
    mask = targets != 0
    log_p = F.log_softmax(teacher, -1)
    kl = (log_p.exp() * (log_p - F.log_softmax(z, -1))).sum(-1)
    ((kl * mask).sum() / mask.sum()).backward()
    expected = torch.zeros(2, 3)
    for k in range(3):
        for n in range(5):
            expected[image_index[n], k] += (z.grad[n] * student[k, n]).sum()
    assert torch.allclose(onehot.grad, expected, atol=1e-6)
    assert (onehot.grad.abs() > 0).all()


def test_selector_ce_mode_matches_cross_entropy():
    student, teacher, targets, image_index = _selector_inputs(1)
    onehot = F.one_hot(torch.tensor([1, 2]), 3).float()
    z_chosen = student[torch.tensor([1, 1, 2, 2, 2]), torch.arange(5)]
    expected = F.cross_entropy(z_chosen.reshape(-1, 9), targets.reshape(-1), ignore_index=0)
    loss = selector_accuracy_loss(student, teacher, targets, onehot, image_index, mode="ce")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_selector_kl_mode_zero_iff_student_matches_teacher():
    student, teacher, targets, image_index = _selector_inputs(2)
    onehot = F.one_hot(torch.tensor([0, 1]), 3).float()
    matched = student.clone()
    matched[0, :2] = teacher[:2] + 3.0  # equal up to a shift, i.e. equal after log-softmax
    matched[1, 2:] = teacher[2:] - 1.0
    kl = selector_accuracy_loss(matched, teacher, targets, onehot, image_index, mode="kl")
    assert abs(kl.item()) < 1e-5
    # Differences at padding positions are ignored.
    padded = matched.clone()
    padded[0, 0, 5] += torch.randn(9)
    assert abs(selector_accuracy_loss(padded, teacher, targets, onehot, image_index).item()) < 1e-5
    # A mismatch at a scored token, or at a different chosen scale, is positive.
    assert selector_accuracy_loss(student, teacher, targets, onehot, image_index).item() > 0.1
    other = F.one_hot(torch.tensor([2, 1]), 3).float()
    assert selector_accuracy_loss(matched, teacher, targets, other, image_index).item() > 0.1
    # Hand value of the token mean of KL.
    z = student[torch.tensor([0, 0, 1, 1, 1]), torch.arange(5)]
    mask = targets != 0
    log_p = F.log_softmax(teacher, -1)
    expected = ((log_p.exp() * (log_p - F.log_softmax(z, -1))).sum(-1) * mask).sum() / mask.sum()
    loss = selector_accuracy_loss(student, teacher, targets, onehot, image_index)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("mode", ["kl", "ce"])
def test_selector_no_instance(mode):
    logits, onehot = _gumbel_onehot(0)
    loss = selector_accuracy_loss(
        torch.zeros(3, 0, 6, 9), torch.zeros(0, 6, 9), torch.zeros(0, 6, dtype=torch.long), onehot,
        torch.zeros(0, dtype=torch.long), mode=mode,
    )
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_selector_image_without_instance_contributes_nothing():
    student, teacher, targets, image_index = _selector_inputs(3)
    onehot = F.one_hot(torch.tensor([1, 0, 2]), 3).float().requires_grad_(True)  # image 2 has no instance
    loss = selector_accuracy_loss(student, teacher, targets, onehot, image_index)
    two = selector_accuracy_loss(student, teacher, targets, onehot[:2].detach(), image_index)
    assert loss.item() == pytest.approx(two.item(), rel=1e-6)
    loss.backward()
    assert (onehot.grad[2] == 0).all() and (onehot.grad[:2] != 0).all()


# ----------------------------------------------------------------------------------------------------------
# cost
def test_selector_cost_hand_values():
    onehot = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], requires_grad=True)
    cost = torch.tensor([0.2, 0.5, 1.0])
    loss = selector_cost_loss(onehot, cost, gamma=0.3)
    assert loss.item() == pytest.approx(0.3 * (0.5 + 0.2) / 2)
    loss.backward()
    assert torch.allclose(onehot.grad, 0.3 * cost.expand(2, 3) / 2)
    per_image = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    assert selector_cost_loss(onehot, per_image, gamma=1.0).item() == pytest.approx((0.2 + 0.4) / 2)
    empty = selector_cost_loss(torch.zeros(0, 3, requires_grad=True), cost, gamma=0.1)
    assert empty.item() == 0.0 and empty.requires_grad
