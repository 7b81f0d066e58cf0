#!/usr/bin/env python3
"""Export PyTorch reference results for a narrow ResNet-12 as test fixtures.

Builds MetaOptNet's ResNet-12 layout (same state_dict keys) at widths
4-8-12-16 with dropout and DropBlock disabled, and writes, for a fixed batch
of six 32 x 32 images and the loss sum(embeddings * loss_weights):
  - the initial state (with random batch-norm weights and running statistics),
  - evaluation mode: embeddings, dLoss/dImages, every parameter gradient,
  - training mode with the batch split into two calls (2 and 4 images, as
    normalisation groups [2, 4]): the same, plus the running statistics after,
  - the parameters after one and after two SGD steps (lr 0.1, momentum 0.9,
    weight decay 5e-4, Nesterov) with the training gradients.

Output: Tests/NeuralNetworkTests/Fixtures/resnet12_reference.json (names,
shapes, offsets) and resnet12_reference.f32 (little-endian float32).
Run by hand: /work/venv/bin/python Scripts/backbone_reference.py
"""
import json
import pathlib

import numpy as np
import torch
import torch.nn as nn

WIDTHS = [4, 8, 12, 16]
GROUPS = [2, 4]
OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "NeuralNetworkTests" / "Fixtures"


class Block(nn.Module):
    """One residual block; attribute names give MetaOptNet's state_dict keys."""

    def __init__(self, in_channels, channels):
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

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.maxpool(self.relu(out + self.downsample(x)))


class ResNet12(nn.Module):
    def __init__(self, widths):
        super().__init__()
        in_channels = 3
        for index, width in enumerate(widths):
            setattr(self, f"layer{index + 1}", nn.Sequential(Block(in_channels, width)))
            in_channels = width

    def forward(self, x):
        for index in range(4):
            x = getattr(self, f"layer{index + 1}")(x)
        return x.view(x.size(0), -1)


def main():
    torch.manual_seed(0)
    model = ResNet12(WIDTHS)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="leaky_relu")
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
                module.running_mean.normal_(0, 0.3)
                module.running_var.uniform_(0.5, 1.5)
    initial = {key: value.clone() for key, value in model.state_dict().items()}

    images = torch.randn(sum(GROUPS), 3, 32, 32)
    loss_weights = torch.randn(sum(GROUPS), WIDTHS[3] * 2 * 2)
    tensors = {"images": images, "loss_weights": loss_weights}
    for key, value in initial.items():
        if not key.endswith("num_batches_tracked"):
            tensors["initial/" + key] = value

    def run(mode, split):
        model.load_state_dict(initial)
        model.train(mode == "train")
        model.zero_grad()
        inputs = images.clone().requires_grad_(True)
        parts = torch.split(inputs, split) if split else [inputs]
        embeddings = torch.cat([model(part) for part in parts])
        (embeddings * loss_weights).sum().backward()
        tensors[f"{mode}/embeddings"] = embeddings.detach()
        tensors[f"{mode}/d_images"] = inputs.grad
        for name, parameter in model.named_parameters():
            tensors[f"{mode}/grad/{name}"] = parameter.grad.clone()

    run("eval", None)
    run("train", GROUPS)
    counts = {}
    for key, value in model.state_dict().items():
        if key.endswith("running_mean") or key.endswith("running_var"):
            tensors["train/state/" + key] = value.clone()
        elif key.endswith("num_batches_tracked"):
            counts[key] = int(value)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    for step in (1, 2):
        optimizer.step()
        for name, parameter in model.named_parameters():
            tensors[f"sgd{step}/{name}"] = parameter.detach().clone()

    OUTPUT.mkdir(parents=True, exist_ok=True)
    manifest = {"widths": WIDTHS, "groups": GROUPS, "num_batches_tracked_after_train": counts,
                "torch_version": torch.__version__, "tensors": {}}
    offset = 0
    chunks = []
    for name, tensor in tensors.items():
        array = tensor.detach().numpy().astype("<f4").ravel()
        manifest["tensors"][name] = {"shape": list(tensor.shape), "offset": offset}
        offset += array.size
        chunks.append(array)
    (OUTPUT / "resnet12_reference.f32").write_bytes(np.concatenate(chunks).tobytes())
    (OUTPUT / "resnet12_reference.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(tensors)} tensors, {offset} floats, to {OUTPUT}")


if __name__ == "__main__":
    main()
