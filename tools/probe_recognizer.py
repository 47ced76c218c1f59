#!/usr/bin/env python
"""
How many word samples does the recognition branch need before it reads? Trains the recognizer of a config
(LightCRNN, BiLSTM encoder, attention decoder and the auxiliary CTC classifier) without the detector, on
rectified word crops of the synthetic training split, behind a small stride-4 CNN stem that stands in for P2:
a 32x128 crop gives exactly the 8x32 features the branch reads. It prints the losses, the teacher-forced
character accuracy and, periodically, greedy word accuracy on held-out crops, against the number of word samples.

    python tools/probe_recognizer.py --config-file configs/synth/text_spotter_R_18_FPN_synth.yaml \
        --num-images 6000 --batch-size 64 --max-seconds 900
"""
import argparse
import os
import time

import cv2
import numpy as np
import torch
from detectron2.layers import ShapeSpec
from torch import nn

from dld.data.builtin import resolve_dataset_path
from dld.engine import load_config
from dld.modeling.text_head import TextRecognitionHead

CROP_HEIGHT, CROP_WIDTH = 32, 128


def read_crops(split_dir: str, num_images: int):
    """Perspective-rectified crops of the cared, not vertical, quadrilateral words of the first images."""
    crops, texts = [], []
    target = np.array([[0, 0], [CROP_WIDTH, 0], [CROP_WIDTH, CROP_HEIGHT], [0, CROP_HEIGHT]], np.float32)
    for i in range(1, num_images + 1):
        image = cv2.imread(os.path.join(split_dir, "images", f"img_{i}.jpg"))
        if image is None:
            break
        with open(os.path.join(split_dir, "gts_ic15", f"gt_img_{i}.txt"), encoding="utf-8-sig") as f:
            for line in f:
                parts = line.rstrip("\n").split(",", 8)
                if len(parts) < 9 or parts[8] == "###":
                    continue
                quad = np.array(parts[:8], np.float32).reshape(4, 2)
                if np.linalg.norm(quad[3] - quad[0]) > 1.5 * np.linalg.norm(quad[1] - quad[0]):
                    continue
                matrix = cv2.getPerspectiveTransform(quad, target)
                crops.append(cv2.warpPerspective(image, matrix, (CROP_WIDTH, CROP_HEIGHT))[:, :, ::-1].copy())
                texts.append(parts[8])
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous(), texts


def stride4_stem(channels: int) -> nn.Module:
    def block(cin, cout, stride):
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(*block(3, 32, 2), *block(32, 64, 2), *block(64, channels, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="configs/synth/text_spotter_R_18_FPN_synth.yaml")
    parser.add_argument("--num-images", type=int, default=6000, help="training images the crops come from")
    parser.add_argument("--val-crops", type=int, default=500, help="last crops held out for word accuracy")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--eval-period", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    cfg = load_config(args.config_file, args.opts)
    channels = cfg.MODEL.TEXT_HEAD.CHANNELS
    head = TextRecognitionHead(cfg, ShapeSpec(channels=channels, stride=1))
    stem = stride4_stem(channels)
    ctc_weight = cfg.MODEL.TEXT_HEAD.CTC_LOSS_WEIGHT

    crops, texts = read_crops(resolve_dataset_path("synth_text/train"), args.num_images)
    targets = head.charset_encoder.encode_batch(texts)
    readable = (targets != 0).any(dim=1)
    crops, targets = crops[readable], targets[readable]
    num_train = len(crops) - args.val_crops
    print(f"{len(crops)} crops: {num_train} for training, {args.val_crops} held out", flush=True)

    params = list(stem.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, args.lr, weight_decay=0.0)

    def encode(index):
        return head.sequence_encoder(head.cnn(stem((crops[index].float() - 128) / 64)))

    start, samples, step = time.perf_counter(), 0, 0
    while time.perf_counter() - start < args.max_seconds:
        stem.train()
        head.train()
        index = torch.randint(0, num_train, (args.batch_size,))
        batch_targets = targets[index]
        context = encode(index)
        logits = head.decoder(context, batch_targets)
        loss = head.loss(logits, batch_targets)
        ctc = head.ctc_loss(context, batch_targets) if ctc_weight > 0 else loss.detach() * 0
        optimizer.zero_grad()
        (loss + ctc_weight * ctc).backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE)
        optimizer.step()
        samples += args.batch_size
        step += 1
        if step % 50 == 0:
            cared = batch_targets != 0
            char_acc = ((logits.argmax(-1) == batch_targets) & cared).sum().item() / cared.sum().item()
            line = f"step {step} samples {samples} loss_rec {loss.item():.3f} ctc {ctc.item():.3f} char_acc {char_acc:.3f}"
            if step % args.eval_period == 0:
                stem.eval()
                head.eval()
                with torch.no_grad():
                    held_out = torch.arange(num_train, len(crops))
                    ids, _ = head.decoder.greedy(encode(held_out))
                word_acc = (ids == targets[held_out]).all(dim=1).float().mean().item()
                line += f" held-out word_acc {word_acc:.3f}"
            print(f"{line} ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
