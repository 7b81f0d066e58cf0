#!/usr/bin/env python3
"""Load a fewshot checkpoint into a PyTorch ResNet-12 and compare embeddings.

The backbone tensors of a checkpoint carry the names of MetaOptNet's
ResNet-12 state_dict, so PyTorch loads them with load_state_dict(strict=True).
This script:
  1. reads the checkpoint (safetensors) and its stored config with numpy only;
  2. builds the PyTorch ResNet-12 of Scripts/backbone_reference.py at the
     checkpoint's widths and loads every backbone tensor, num_batches_tracked included;
  3. takes the first --count images of the CIFAR-100 test.bin, normalises them
     with the CIFAR-100 channel statistics, and embeds them in evaluation mode;
  4. runs `fewshot embed` on the same images and compares the two embeddings:
     maximum absolute difference, maximum relative difference (to the largest
     |embedding|), and the smallest cosine similarity of matching rows.

Run by hand after a release build, for example:
  /work/venv/bin/python Scripts/compare_checkpoint_torch.py \
      --checkpoint Runs/<run>/best.safetensors --data ../shared/data/cifar-100-binary
Exits with status 1 when the relative difference exceeds --tolerance.
"""
import argparse
import json
import pathlib
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "Scripts"))
from backbone_reference import ResNet12  # noqa: E402  (the backbone tests' PyTorch model)

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
MEAN = np.array([129.377, 124.106, 112.478], dtype=np.float32) / 255
STD = np.array([68.209, 65.431, 70.459], dtype=np.float32) / 255


def read_safetensors(path):
    """Returns ({name: array}, metadata) of a safetensors file."""
    data = pathlib.Path(path).read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_length])
    metadata = header.pop("__metadata__", {})
    start = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[start + begin:start + end], dtype=DTYPES[entry["dtype"]])
        tensors[name] = array.reshape(entry["shape"]).copy()
    return tensors, metadata


def write_safetensors(path, tensors):
    """Writes float32 arrays as a safetensors file."""
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        blob = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    pathlib.Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_images(data_folder, count):
    """Returns the first `count` test images, normalised, as [count, 3, 32, 32] float32."""
    records = np.fromfile(pathlib.Path(data_folder) / "test.bin", dtype=np.uint8, count=count * 3074)
    pixels = records.reshape(count, 3074)[:, 2:].reshape(count, 3, 32, 32).astype(np.float32) / 255
    return (pixels - MEAN[None, :, None, None]) / STD[None, :, None, None]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by 'fewshot train'")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cifar-100-binary"), help="CIFAR-100 binary folder")
    parser.add_argument("--count", type=int, default=32, help="number of test images to embed")
    parser.add_argument("--tool", default=str(ROOT / ".build" / "release" / "fewshot"), help="the fewshot executable")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest accepted relative difference")
    arguments = parser.parse_args()

    tensors, metadata = read_safetensors(arguments.checkpoint)
    config = json.loads(metadata["config"])
    widths = config["backbone"]["widths"]
    model = ResNet12(widths)
    state = {}
    for name in model.state_dict():
        array = tensors[name]
        state[name] = torch.from_numpy(array) if array.dtype != np.int64 else torch.tensor(int(array.reshape(-1)[0]))
    model.load_state_dict(state, strict=True)
    model.eval()
    unused = sorted(name for name in tensors if name not in state and not name.startswith(("head.", "optimizer.")))
    print(f"checkpoint {arguments.checkpoint}: epoch {metadata['epoch']}, widths {widths}, "
          f"{len(state)} backbone tensors loaded with strict=True, unmatched backbone tensors: {unused or 'none'}")

    images = load_images(arguments.data, arguments.count)
    with torch.no_grad():
        torch_embeddings = model(torch.from_numpy(images)).numpy()

    with tempfile.TemporaryDirectory() as folder:
        images_path = pathlib.Path(folder) / "images.safetensors"
        output_path = pathlib.Path(folder) / "embeddings.safetensors"
        write_safetensors(images_path, {"images": images})
        subprocess.run([arguments.tool, "embed", "--checkpoint", arguments.checkpoint, "--images", str(images_path),
                        "--output", str(output_path)], check=True)
        swift_embeddings = read_safetensors(output_path)[0]["embeddings"]

    if swift_embeddings.shape != torch_embeddings.shape:
        print(f"shape mismatch: fewshot {swift_embeddings.shape}, PyTorch {torch_embeddings.shape}")
        return 1
    difference = np.abs(swift_embeddings.astype(np.float64) - torch_embeddings)
    scale = np.abs(torch_embeddings).max()
    cosine = np.sum(swift_embeddings * torch_embeddings, axis=1) / (
        np.linalg.norm(swift_embeddings, axis=1) * np.linalg.norm(torch_embeddings, axis=1))
    relative = difference.max() / scale
    print(f"{arguments.count} images, embedding dimension {torch_embeddings.shape[1]}: "
          f"max |difference| {difference.max():.3e}, max |embedding| {scale:.3e}, "
          f"relative {relative:.3e}, smallest row cosine {cosine.min():.8f}")
    if relative > arguments.tolerance:
        print(f"FAILED: relative difference above {arguments.tolerance}")
        return 1
    print("OK: the PyTorch ResNet-12 reproduces the checkpoint's embeddings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
