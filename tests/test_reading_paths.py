"""
The reading paths the config can choose (MODEL.TEXT_HEAD.IN_FEATURE "image" or a feature map, DECODER "ctc" or
"attention"): each overfits a handful of words to 100% word accuracy, and the pieces behave as documented.
"""
import itertools
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dld.data.charset import CharsetEncoder
from dld.modeling.ctc import CTCDecoder
from dld.modeling.pixel_reader import ImageCropExtractor
from dld.modeling.text_head import TextRecognitionHead

WORDS = ["cat", "tree", "go", "1984", "hello", "moon"]


def _word_image():
    """One 3x160x256 image with the six words written in rows, and their boxes."""
    image = np.full((160, 256, 3), 40, np.uint8)
    boxes = []
    for i, word in enumerate(WORDS):
        x, y = 8 + 120 * (i % 2), 30 + 48 * (i // 2)
        (w, h), base = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, 0.9, 2)
        cv2.putText(image, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (230, 230, 230), 2)
        boxes.append([x - 2, y - h - 3, x + w + 2, y + base + 2])
    tensor = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 64 - 2
    return tensor, torch.tensor(boxes, dtype=torch.float32)


def _head(from_image: bool, decoder: str, in_channels: int) -> TextRecognitionHead:
    return TextRecognitionHead(
        in_channels=in_channels,
        channels=32,
        pooler_resolution=(8, 32),
        stride=1 if from_image else 4,
        vertical_ratio=1.5,
        mask_threshold=0.5,
        encoder=CharsetEncoder("", 8, case_sensitive=False),
        from_image=from_image,
        decoder=decoder,
        encoder_layers=1,
    )


@pytest.mark.parametrize(
    "from_image,decoder", [(True, "ctc"), (True, "attention"), (False, "ctc")], ids=["image-ctc", "image-attention", "p2-ctc"]
)
def test_reading_path_overfits_a_handful_of_words(from_image, decoder, single_thread):
    torch.manual_seed(0)
    image, boxes = _word_image()
    if from_image:
        feature = image
    else:  # a fixed random stride-4 feature map stands in for P2: each word's crop is distinct
        feature = torch.randn(1, 8, 40, 64)
    head = _head(from_image, decoder, feature.shape[1])
    encoder = head.charset_encoder
    targets = encoder.encode_batch(WORDS)
    masks = [torch.ones(len(WORDS), 28, 28)]
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    read = []
    for step in range(400):
        head.train()
        outputs = head.forward_train(feature, [boxes], masks, targets)
        loss = head.loss(outputs.logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 24:
            head.eval()
            with torch.no_grad():
                ids, log_probs = head.recognize(head.encode(feature, [boxes], masks).context)
            read = encoder.decode_batch(ids)
            if read == WORDS:
                break
    assert read == WORDS, f"after {step + 1} steps read {read}"
    scores = head.text_scores(ids, log_probs, head.encode(feature, [boxes], masks).context.shape[1])
    assert torch.all((scores > 0.5) & (scores <= 1.0))


def _brute_force_prefix_log_prob(log_probs: torch.Tensor, labels, blank=0):
    """log sum over every CTC path that collapses to `labels`."""
    steps, classes = log_probs.shape
    total = -math.inf
    for path in itertools.product(range(classes), repeat=steps):
        collapsed = [k for i, k in enumerate(path) if k != blank and (i == 0 or k != path[i - 1])]
        if collapsed == list(labels):
            lp = sum(log_probs[t, k].item() for t, k in enumerate(path))
            total = np.logaddexp(total, lp)
    return total


def test_ctc_prefix_beam_search_scores_are_exact_prefix_probabilities():
    torch.manual_seed(3)
    decoder = CTCDecoder(channels=4, num_classes=4, num_steps=6).eval()  # blank, [s] (never emitted), 2 chars
    context = torch.randn(2, 4, 4)
    # Wider than the 31 prefixes of 4 columns over 2 characters: nothing is pruned, so scores are exact.
    sequences, scores = decoder.beam_search(context, beam_width=32)
    log_probs = F.log_softmax(decoder(context), dim=-1)
    assert torch.all(scores[:, :-1] >= scores[:, 1:])
    for i in range(2):
        for k in range(3):
            seq = sequences[i, k].tolist()
            labels = seq[: seq.index(CharsetEncoder.EOS)]
            assert scores[i, k].item() == pytest.approx(_brute_force_prefix_log_prob(log_probs[i], labels), abs=1e-4)
    # With peaked columns the best beam is the greedy best path.
    peaked = CTCDecoder(channels=4, num_classes=6, num_steps=8).eval()
    with torch.no_grad():
        peaked.classifier.weight.mul_(20)
    ids, _ = peaked.greedy(context)
    assert torch.equal(peaked.beam_search(context, 3)[0][:, 0], ids)


def test_ctc_greedy_collapses_repeats_and_blanks():
    decoder = CTCDecoder(channels=6, num_classes=6, num_steps=6)
    path = torch.tensor([[0, 2, 2, 0, 2, 3, 3, 0]])
    assert decoder._to_sequences(path).tolist() == [[2, 2, 3, 1, 0, 0]]


def test_image_crop_extractor_cuts_and_resamples_the_box():
    image = torch.arange(2 * 3 * 40 * 80, dtype=torch.float32).reshape(2, 3, 40, 80)  # linear in x and y
    extractor = ImageCropExtractor((8, 32), margin=0.0)
    crops = extractor(image, [torch.zeros((0, 4)), torch.tensor([[16.0, 8.0, 48.0, 16.0]])])
    assert crops.shape == (1, 3, 8, 32)
    # A box of exactly 8x32 pixels sampled at 8x32: on a linear image, each bin's samples average to its pixel.
    assert torch.allclose(crops[0], image[1, :, 8:16, 16:48], atol=1e-4)


def test_image_crop_extractor_turns_vertical_words_to_read_left_to_right():
    image = torch.zeros(1, 1, 64, 64)
    image[0, 0, 10:14, 20:28] = 1.0  # a mark at the top of a tall box
    crops = ImageCropExtractor((8, 32), margin=0.0)(image, [torch.tensor([[20.0, 10.0, 28.0, 42.0]])])
    # The top of the vertical word becomes the left end of the crop.
    assert crops[0, 0, :, :4].mean() > 0.9 and crops[0, 0, :, -8:].abs().max() < 1e-6


def test_sequence_kd_on_the_ctc_path_uses_the_ctc_log_likelihood():
    from dld.modeling.distill_losses import sequence_kd_loss, sequence_log_probs

    torch.manual_seed(0)
    decoder = CTCDecoder(channels=4, num_classes=5, num_steps=5)
    context = torch.randn(2, 4, 4, requires_grad=True)
    sequences = torch.tensor([[[2, 3, 1, 0, 0], [2, 1, 0, 0, 0]], [[4, 4, 1, 0, 0], [3, 1, 0, 0, 0]]])
    log_p = sequence_log_probs(decoder, context, sequences)
    columns = F.log_softmax(decoder(context), dim=-1)
    for i in range(2):
        for k in range(2):
            seq = sequences[i, k].tolist()
            expected = _brute_force_prefix_log_prob(columns[i].detach(), seq[: seq.index(1)])
            assert log_p[i, k].item() == pytest.approx(expected, abs=1e-4)
    loss = sequence_kd_loss(decoder, context, sequences, torch.tensor([[-0.1, -2.0], [-0.5, -0.7]]))
    loss.backward()
    assert torch.isfinite(loss) and context.grad.abs().sum() > 0
