#!/usr/bin/env python3
"""Time MetaOptNet's ResNet-12 in PyTorch on the CPU beside `fewshot bench backbone`.

The shapes are those of the Swift benchmark: full widths 64-160-320-640 and
32 x 32 images. The training step runs 440 images as two calls (200 support
and 240 query images, as MetaOptNet embeds them) with dropout and DropBlock
on (rate 0.1, block size 2). It then computes the loss sum(embeddings * R),
runs backward and takes a Nesterov SGD step. The evaluation forward runs 80
images. Both sides use the thread count given (default 2).

The PyTorch side runs in this process and the Swift side in a subprocess
with the same environment. To compare with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset, unset them for the whole command:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /work/venv/bin/python \
        Scripts/bench_backbone_torch.py --swift .build/release/fewshot

Prints both sides' medians and the ratio PyTorch time / Swift time
(above 1 means the Swift backbone is faster).
"""
import argparse
import re
import resource
import statistics
import subprocess
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FORWARD_GFLOP_PER_IMAGE = 1.046


class DropBlock(nn.Module):
    """Seeds Bernoulli(gamma) on the valid grid and zeroes block x block squares below-right of each seed."""

    def __init__(self, block_size):
        super().__init__()
        self.block_size = block_size

    def forward(self, x, gamma):
        if not self.training:
            return x
        n, c, h, w = x.shape
        seeds = torch.bernoulli(torch.full((n, c, h - self.block_size + 1, w - self.block_size + 1), gamma))
        # A seed at (i, j) covers rows i..i+b-1 and columns j..j+b-1: a max over the window ending there.
        padded = F.pad(seeds, (self.block_size - 1, self.block_size - 1, self.block_size - 1, self.block_size - 1))
        dropped = F.max_pool2d(padded, self.block_size, stride=1)[:, :, :h, :w]
        mask = 1 - dropped
        return x * mask * (mask.numel() / mask.sum().clamp(min=1))


class Block(nn.Module):
    def __init__(self, in_channels, channels, drop_rate, drop_block):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.LeakyReLU(0.1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.maxpool = nn.MaxPool2d(2)
        self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.drop_rate = drop_rate
        self.drop_block = drop_block
        self.DropBlock = DropBlock(2)
        self.passes = 0

    def forward(self, x):
        self.passes += 1
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = self.maxpool(self.relu(out + self.downsample(x)))
        if self.drop_block:
            size = out.size(2)
            keep = max(1.0 - self.drop_rate * self.passes / 40000, 1.0 - self.drop_rate)
            gamma = (1 - keep) / 4 * size ** 2 / (size - 1) ** 2
            return self.DropBlock(out, gamma)
        return F.dropout(out, p=self.drop_rate, training=self.training, inplace=True)


class ResNet12(nn.Module):
    def __init__(self, widths=(64, 160, 320, 640), drop_rate=0.1):
        super().__init__()
        blocks, in_channels = [], 3
        for index, width in enumerate(widths):
            blocks.append(nn.Sequential(Block(in_channels, width, drop_rate, index >= 2)))
            in_channels = width
        self.layer1, self.layer2, self.layer3, self.layer4 = blocks
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="leaky_relu")

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.view(x.size(0), -1)


def bench_torch(threads, repeats, eval_repeats):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = ResNet12()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    support, query = torch.randn(200, 3, 32, 32), torch.randn(240, 3, 32, 32)
    weights = torch.randn(440, 2560) * 1e-3
    model.train()
    steps = []
    for iteration in range(repeats + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        embeddings = torch.cat([model(support), model(query)])
        (embeddings * weights).sum().backward()
        optimizer.step()
        if iteration > 0:
            steps.append(time.perf_counter() - start)
    model.eval()
    evals = []
    with torch.no_grad():
        for iteration in range(eval_repeats + 1):
            start = time.perf_counter()
            model(support[:80])
            if iteration > 0:
                evals.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    return statistics.median(steps), min(steps), statistics.median(evals), peak_mb


def bench_swift(binary, threads, repeats, eval_repeats):
    output = subprocess.run([binary, "bench", "backbone", "--threads", str(threads), "--repeats", str(repeats),
                             "--eval-repeats", str(eval_repeats)], check=True, capture_output=True, text=True).stdout
    match = re.search(r"training step, 440 images: ([0-9.]+) s median of [0-9]+ \(min ([0-9.]+)\)", output)
    step, fastest = float(match.group(1)), float(match.group(2))
    evaluation = float(re.search(r"evaluation forward, 80 images: ([0-9.]+) ms", output).group(1)) / 1000
    peak = float(re.search(r"peak resident memory: ([0-9.]+) MB", output).group(1))
    sgemm = re.search(r"sgemm 2048\^3: ([0-9.]+) GFLOP/s", output)
    return step, fastest, evaluation, peak, float(sgemm.group(1)) if sgemm else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="threads on both sides (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed training steps after one warm-up (default 3)")
    parser.add_argument("--eval-repeats", type=int, default=5, help="timed evaluation forwards (default 5)")
    parser.add_argument("--swift", metavar="BINARY", help="path of the release fewshot binary to run beside PyTorch")
    args = parser.parse_args()

    rows = []
    if args.swift:
        swift = bench_swift(args.swift, args.threads, args.repeats, args.eval_repeats)
        rows.append(("swift", *swift[:4]))
        if swift[4]:
            print(f"sgemm 2048^3 (OpenBLAS, same run): {swift[4]:.1f} GFLOP/s")
    rows.append((f"torch {torch.__version__}", *bench_torch(args.threads, args.repeats, args.eval_repeats)))

    step_gflop = 3 * FORWARD_GFLOP_PER_IMAGE * 440
    print(f"{'':18} {'step s':>8} {'min s':>8} {'images/s':>9} {'GFLOP/s':>8} {'eval ms':>8} {'peak MB':>8}")
    for name, step, fastest, evaluation, peak in rows:
        print(f"{name:18} {step:8.3f} {fastest:8.3f} {440 / step:9.1f} {step_gflop / step:8.1f} {evaluation * 1000:8.1f} {peak:8.0f}")
    if args.swift:
        swift, reference = rows
        print(f"ratio torch/swift: training step {reference[1] / swift[1]:.2f} (min {reference[2] / swift[2]:.2f}), "
              f"evaluation {reference[3] / swift[3]:.2f}, peak memory swift/torch {swift[4] / reference[4]:.2f}")


if __name__ == "__main__":
    main()
