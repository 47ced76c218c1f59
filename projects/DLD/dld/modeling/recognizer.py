"""
The recognition branch of the spotter (reference spec §1.5): mask-guided RoI features from P2, a light CNN,
a BiLSTM encoder and an additive-attention LSTM decoder with greedy and beam-search decoding.
"""
import math
from typing import List, Optional, Sequence, Tuple

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
        self,
        feature: torch.Tensor,
        boxes: List[torch.Tensor],
        masks: List[torch.Tensor],
        input_scales: Optional[Sequence[float]] = None,
    ) -> torch.Tensor:
        """
        Args:
            feature: [B, C, H, W] feature map of the batch (P2).
            boxes: per image, [n_i, 4] XYXY boxes in input-image pixels.
            masks: per image, [n_i, M, M] masks relative to their boxes (probabilities or 0/1).
            input_scales: per image, the scale s of the input against the original image (None: all 1). The
                region read is the reference's one at scale 1 (the box grown by one cell and truncated to whole
                cells, in the original image's cells), mapped to the input at s and read with bilinear sampling
                at fractional cell positions: a low-resolution student reads what the teacher reads. At s = 1
                this is exactly the reference's integer crop.

        Returns:
            [sum n_i, channels, out_h, out_w] masked RoI features, in the order of `boxes`.
        """
        fmap = self.conv(feature)
        height, width = fmap.shape[-2:]
        regions = []  # (image index, grid box, box, fractional region within the grid box) per instance
        for b, boxes_b in enumerate(boxes):
            s = 1.0 if input_scales is None else float(input_scales[b])
            for x1, y1, x2, y2 in boxes_b.detach().to("cpu", torch.float64).tolist():
                # ±1 cell of context around the box, truncated to int, as the reference does, at scale 1.
                rx1 = min(max(int(x1 / s / self.stride - 1) * s, 0.0), width)
                ry1 = min(max(int(y1 / s / self.stride - 1) * s, 0.0), height)
                rx2 = min(max(int(x2 / s / self.stride + 1) * s, 0.0), width)
                ry2 = min(max(int(y2 / s / self.stride + 1) * s, 0.0), height)
                gx1, gy1 = int(math.floor(rx1 + 1e-9)), int(math.floor(ry1 + 1e-9))
                gx2, gy2 = int(math.ceil(rx2 - 1e-9)), int(math.ceil(ry2 - 1e-9))
                region = (rx1 - gx1, ry1 - gy1, rx2 - rx1, ry2 - ry1)
                regions.append((b, (gx1, gy1, gx2, gy2), (x1, y1, x2, y2), region))
        out = fmap.new_zeros((len(regions), fmap.shape[1]) + self.output_size)
        if not regions:
            return out
        all_masks = torch.cat([m.reshape(-1, *m.shape[-2:]) for m in masks]).to(fmap.device)
        # Degenerate boxes keep zero features (the reference crashes on them).
        valid = [
            i for i, (_, (gx1, gy1, gx2, gy2), (x1, y1, x2, y2), _) in enumerate(regions)
            if gx2 > gx1 and gy2 > gy1 and x2 > x1 and y2 > y1
        ]
        for chunk in self._chunks_by_size(valid, regions, fmap.shape[1]):
            index = torch.as_tensor(chunk, device=fmap.device)
            crops = self._masked_resize(fmap, [regions[i] for i in chunk], all_masks[index])
            out = out.index_copy(0, index, crops)
        return out

    @staticmethod
    def _chunks_by_size(indices: List[int], regions, channels: int, budget: int = 1 << 24) -> List[List[int]]:
        """Group instances of similar crop size so that a padded batch of crops stays under `budget` floats."""
        def area(i):
            gx1, gy1, gx2, gy2 = regions[i][1]
            return (gy2 - gy1) * (gx2 - gx1)

        chunks, current, max_h, max_w = [], [], 0, 0
        for i in sorted(indices, key=area):
            gx1, gy1, gx2, gy2 = regions[i][1]
            h, w = max(max_h, gy2 - gy1), max(max_w, gx2 - gx1)
            if current and (len(current) + 1) * h * w * channels > budget:
                chunks.append(current)
                current, h, w = [], gy2 - gy1, gx2 - gx1
            current.append(i)
            max_h, max_w = h, w
        if current:
            chunks.append(current)
        return chunks

    def _masked_resize(self, fmap: torch.Tensor, regions, masks: torch.Tensor) -> torch.Tensor:
        """
        Crop, mask, transpose vertical crops and resize to `output_size`, for a group of instances at once.
        Equal to cropping each region, multiplying by its mask and `F.interpolate(bilinear,
        align_corners=False)`, but with one gather instead of one slice per instance (whose backward pass
        allocates a full-size gradient each time).
        """
        device, dtype = fmap.device, fmap.dtype
        height, width = fmap.shape[-2:]
        out_h, out_w = self.output_size
        grid_boxes = torch.tensor([r[1] for r in regions], device=device)
        off_x, off_y, ext_w, ext_h = torch.tensor([r[3] for r in regions], device=device, dtype=torch.float64).unbind(1)
        boxes = torch.tensor([r[2] for r in regions], device=device, dtype=torch.float32)
        image_index = torch.tensor([r[0] for r in regions], device=device)
        gx1, gy1, gx2, gy2 = grid_boxes.unbind(1)
        hs, ws = gy2 - gy1, gx2 - gx1
        max_h, max_w = int(hs.max()), int(ws.max())
        rows = torch.arange(max_h, device=device)
        cols = torch.arange(max_w, device=device)
        ys = (gy1[:, None] + rows).clamp(max=height - 1)
        xs = (gx1[:, None] + cols).clamp(max=width - 1)
        crops = fmap[image_index[:, None, None], :, ys[:, :, None], xs[:, None, :]].permute(0, 3, 1, 2)

        # The mask sampled at the centres of the crop's cells; grid_sample maps -1 and 1 to the box edges.
        x1, y1, x2, y2 = boxes.unbind(1)
        cx = ((gx1[:, None] + cols).float() + 0.5) * self.stride
        cy = ((gy1[:, None] + rows).float() + 0.5) * self.stride
        nx = ((cx - x1[:, None]) / (x2 - x1)[:, None] * 2 - 1)[:, None, :].expand(-1, max_h, -1)
        ny = ((cy - y1[:, None]) / (y2 - y1)[:, None] * 2 - 1)[:, :, None].expand(-1, -1, max_w)
        sampled = F.grid_sample(
            masks[:, None].float(), torch.stack([nx, ny], dim=-1), mode="bilinear", align_corners=False
        )
        inside = (rows[None, :, None] < hs[:, None, None]) & (cols[None, None, :] < ws[:, None, None])
        crop_mask = (sampled[:, 0] >= self.mask_threshold) & inside
        crops = crops * crop_mask[:, None].to(dtype)

        # Source coordinates of F.interpolate(align_corners=False) over the region (the whole crop at scale 1),
        # clamped to the crop's own cells.
        def source(index, out_size, offset, extent, in_size):
            pos = offset[:, None] + (index.double()[None] + 0.5) * extent[:, None] / out_size - 0.5
            return pos.clamp(min=0).minimum((in_size - 1).double()[:, None]).float()

        oi = torch.arange(out_h, device=device)
        oj = torch.arange(out_w, device=device)
        vertical = (ext_h > self.vertical_ratio * ext_w)[:, None, None]
        # Horizontal: output row i reads crop row f(i), column j reads crop column f(j).
        # Vertical (transposed): output row i reads crop column f(i), column j reads crop row f(j).
        sy = torch.where(
            vertical, source(oj, out_w, off_y, ext_h, hs)[:, None, :], source(oi, out_h, off_y, ext_h, hs)[:, :, None]
        )
        sx = torch.where(
            vertical, source(oi, out_h, off_x, ext_w, ws)[:, :, None], source(oj, out_w, off_x, ext_w, ws)[:, None, :]
        )
        sy, sx = sy.expand(-1, out_h, out_w), sx.expand(-1, out_h, out_w)
        grid = torch.stack([(2 * sx + 1) / max_w - 1, (2 * sy + 1) / max_h - 1], dim=-1)
        return F.grid_sample(crops, grid.to(dtype), mode="bilinear", align_corners=False)


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
