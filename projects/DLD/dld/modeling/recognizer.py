"""
The recognition branch of the spotter (reference spec §1.5): mask-guided RoI features from P2, a light CNN,
a BiLSTM encoder and an additive-attention LSTM decoder with greedy and beam-search decoding.
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MaskedRoIExtractor", "LightCRNN", "SequenceEncoder", "AttentionDecoder"]


class MaskedRoIExtractor(nn.Module):
    """
    Crops each word from a stride-`stride` feature map, multiplies it by the word's binary mask and resizes
    the crop to `output_size` (reference spec §1.5.1). Crops taller than `vertical_ratio` times their width
    are transposed so that vertical words read left to right.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        output_size: Tuple[int, int] = (8, 32),
        stride: int = 4,
        vertical_ratio: float = 1.5,
        mask_threshold: float = 0.5,
    ):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.output_size = tuple(output_size)
        self.stride = stride
        self.vertical_ratio = vertical_ratio
        self.mask_threshold = mask_threshold

    def forward(
        self, feature: torch.Tensor, boxes: List[torch.Tensor], masks: List[torch.Tensor]
    ) -> torch.Tensor:
        """
        Args:
            feature: [B, C, H, W] feature map of the batch (P2).
            boxes: per image, [n_i, 4] XYXY boxes in input-image pixels.
            masks: per image, [n_i, M, M] masks relative to their boxes (probabilities or 0/1).

        Returns:
            [sum n_i, channels, out_h, out_w] masked RoI features, in the order of `boxes`.
        """
        fmap = self.conv(feature)
        out_h, out_w = self.output_size
        height, width = fmap.shape[-2:]
        crops = []
        for b, (boxes_b, masks_b) in enumerate(zip(boxes, masks)):
            boxes_cpu = boxes_b.detach().to("cpu", torch.float64)
            for box, mask in zip(boxes_cpu.tolist(), masks_b):
                x1, y1, x2, y2 = box
                # ±1 cell of context around the box, truncated to int, as the reference does.
                gx1 = min(max(int(x1 / self.stride - 1), 0), width)
                gy1 = min(max(int(y1 / self.stride - 1), 0), height)
                gx2 = min(max(int(x2 / self.stride + 1), 0), width)
                gy2 = min(max(int(y2 / self.stride + 1), 0), height)
                if gx2 <= gx1 or gy2 <= gy1 or x2 <= x1 or y2 <= y1:
                    # A degenerate box: the reference crashes here; we give it empty features.
                    crops.append(fmap.new_zeros((fmap.shape[1], out_h, out_w)))
                    continue
                crop = fmap[b, :, gy1:gy2, gx1:gx2]
                crop = crop * self._mask_on_grid(mask, (x1, y1, x2, y2), (gx1, gy1, gx2, gy2))
                if crop.shape[1] > self.vertical_ratio * crop.shape[2]:
                    crop = crop.transpose(1, 2)
                crop = F.interpolate(crop[None], size=(out_h, out_w), mode="bilinear", align_corners=False)
                crops.append(crop[0])
        if not crops:
            return fmap.new_zeros((0, fmap.shape[1], out_h, out_w))
        return torch.stack(crops)

    def _mask_on_grid(self, mask: torch.Tensor, box, grid_box) -> torch.Tensor:
        """Sample a box-relative mask at the centres of the feature cells of `grid_box`; binary [1, h, w]."""
        x1, y1, x2, y2 = box
        gx1, gy1, gx2, gy2 = grid_box
        device = mask.device
        xs = (torch.arange(gx1, gx2, device=device, dtype=torch.float32) + 0.5) * self.stride
        ys = (torch.arange(gy1, gy2, device=device, dtype=torch.float32) + 0.5) * self.stride
        # grid_sample with align_corners=False maps -1 and 1 to the box edges.
        gx = (xs - x1) / (x2 - x1) * 2 - 1
        gy = (ys - y1) / (y2 - y1) * 2 - 1
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)
        sampled = F.grid_sample(
            mask[None, None].float(), grid[None], mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return (sampled[0] >= self.mask_threshold).to(dtype=torch.float32)


class LightCRNN(nn.Module):
    """
    The reference's light recognition CNN: [N, C, 8, 32] → [N, 33, C] (reference spec §1.5.2).
    """

    def __init__(self, in_channels: int, channels: int):
        super().__init__()

        def conv_bn_relu(cin, cout, kernel, stride, padding):
            return [
                nn.Conv2d(cin, cout, kernel, stride, padding, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        layers = []
        for i in range(4):
            layers += conv_bn_relu(in_channels if i == 0 else channels, channels, 3, 1, 1)
        layers.append(nn.MaxPool2d(kernel_size=2, stride=(2, 1), padding=(0, 1)))
        layers += conv_bn_relu(channels, channels, 2, (2, 1), (0, 1))
        layers += conv_bn_relu(channels, channels, 2, 1, 0)
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(x)  # [N, C, 1, W']
        return x.mean(dim=2).permute(0, 2, 1).contiguous()


class SequenceEncoder(nn.Module):
    """Two bidirectional LSTMs, each followed by a linear projection back to `channels`."""

    def __init__(self, channels: int, num_layers: int = 2):
        super().__init__()
        self.rnns = nn.ModuleList(
            [nn.LSTM(channels, channels, batch_first=True, bidirectional=True) for _ in range(num_layers)]
        )
        self.projections = nn.ModuleList([nn.Linear(2 * channels, channels) for _ in range(num_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for rnn, proj in zip(self.rnns, self.projections):
            x = proj(rnn(x)[0])
        return x


class AttentionDecoder(nn.Module):
    """
    Bahdanau-style attention LSTM decoder (reference spec §1.5.4). The previous token enters as a one-hot
    vector; token 0 is [GO] (and padding), token 1 is [s].
    """

    def __init__(self, channels: int, num_classes: int, num_steps: int, eos: int = 1, go: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.num_steps = num_steps
        self.eos = eos
        self.go = go
        self.i2h = nn.Linear(channels, channels, bias=False)
        self.h2h = nn.Linear(channels, channels)
        self.score = nn.Linear(channels, 1, bias=False)
        self.cell = nn.LSTMCell(channels + num_classes, channels)
        self.generator = nn.Linear(channels, num_classes)

    def _step(self, context, context_proj, state, prev_tokens):
        h, c = state
        e = self.score(torch.tanh(context_proj + self.h2h(h).unsqueeze(1)))  # [N, T, 1]
        alpha = torch.softmax(e, dim=1)
        ctx = torch.bmm(alpha.transpose(1, 2), context).squeeze(1)
        onehot = F.one_hot(prev_tokens, self.num_classes).to(ctx.dtype)
        h, c = self.cell(torch.cat([ctx, onehot], dim=1), (h, c))
        return self.generator(h), (h, c)

    def _init_state(self, context):
        zeros = context.new_zeros((context.shape[0], self.cell.hidden_size))
        return zeros, zeros.clone()

    def forward(self, context: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """
        Teacher-forced logits.

        Args:
            context: [N, T, C] encoder output.
            targets: [N, S] token ids `c1 ... cL [s] 0 ...`; the input at step t is targets[:, t-1] ([GO] at 0).

        Returns:
            [N, S, num_classes] logits.
        """
        state = self._init_state(context)
        context_proj = self.i2h(context)
        prev = torch.full((context.shape[0],), self.go, dtype=torch.long, device=context.device)
        logits = []
        for t in range(targets.shape[1]):
            step_logits, state = self._step(context, context_proj, state, prev)
            logits.append(step_logits)
            prev = targets[:, t]
        return torch.stack(logits, dim=1)

    @torch.no_grad()
    def greedy(self, context: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Returns:
            ids: [N, S] argmax tokens, 0 after the first [s].
            log_probs: [N] summed log-probabilities of the tokens up to and including the first [s].
        """
        n = context.shape[0]
        state = self._init_state(context)
        context_proj = self.i2h(context)
        prev = torch.full((n,), self.go, dtype=torch.long, device=context.device)
        ids = torch.zeros((n, self.num_steps), dtype=torch.long, device=context.device)
        total = context.new_zeros(n)
        finished = torch.zeros(n, dtype=torch.bool, device=context.device)
        for t in range(self.num_steps):
            if n == 0 or bool(finished.all()):
                break
            step_logits, state = self._step(context, context_proj, state, prev)
            logp, token = F.log_softmax(step_logits, dim=-1).max(dim=-1)
            total = total + torch.where(finished, torch.zeros_like(logp), logp)
            ids[:, t] = torch.where(finished, torch.zeros_like(token), token)
            finished = finished | (token == self.eos)
            prev = token
        return ids, total

    @torch.no_grad()
    def beam_search(self, context: torch.Tensor, beam_width: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Beam search on summed log-probabilities. A finished beam keeps its score and emits padding.

        Returns:
            sequences: [N, K, S] token ids (0 after [s]), best first.
            log_probs: [N, K] summed log-probabilities of each sequence up to and including its [s].
        """
        n, k, steps = context.shape[0], beam_width, self.num_steps
        device = context.device
        if n == 0:
            return (
                torch.zeros((0, k, steps), dtype=torch.long, device=device),
                context.new_zeros((0, k)),
            )
        ctx = context.repeat_interleave(k, dim=0)
        ctx_proj = self.i2h(ctx)
        state = self._init_state(ctx)
        scores = context.new_full((n, k), float("-inf"))
        scores[:, 0] = 0.0  # all beams start identical: expand only the first at step 0
        sequences = torch.zeros((n, k, steps), dtype=torch.long, device=device)
        finished = torch.zeros((n, k), dtype=torch.bool, device=device)
        prev = torch.full((n * k,), self.go, dtype=torch.long, device=device)
        for t in range(steps):
            if bool(finished.all()):
                break
            step_logits, state = self._step(ctx, ctx_proj, state, prev)
            logp = F.log_softmax(step_logits, dim=-1).view(n, k, -1)
            # A finished beam may only emit padding, at no cost.
            pad_only = torch.full_like(logp[0, 0], float("-inf"))
            pad_only[0] = 0.0
            logp = torch.where(finished[..., None], pad_only, logp)
            candidates = (scores[..., None] + logp).view(n, -1)
            scores, flat = candidates.topk(k, dim=1)
            beam, token = flat // self.num_classes, flat % self.num_classes
            sequences = torch.gather(sequences, 1, beam[..., None].expand(-1, -1, steps)).clone()
            sequences[:, :, t] = token
            finished = torch.gather(finished, 1, beam) | (token == self.eos)
            rows = (beam + torch.arange(n, device=device)[:, None] * k).view(-1)
            state = (state[0][rows], state[1][rows])
            prev = token.view(-1)
        return sequences, scores
