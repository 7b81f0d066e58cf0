"""Time the PIL-based augmentation that MetaOptNet's PyTorch loader runs, as a peer
figure for `fewshot bench data`.

MetaOptNet's CIFAR-FS/FC100 training transform is torchvision's
RandomCrop(32, padding=4), ColorJitter(0.4, 0.4, 0.4), RandomHorizontalFlip(),
ToTensor(), Normalize(mean, std) on PIL images. torchvision's functional ops on PIL
images call PIL's ImageOps.expand, Image.crop, ImageEnhance.Brightness/Contrast/Color
and Image.transpose. This script calls those directly, because torchvision is not
installed here, and converts each image to a normalised float32 array. It runs one
image at a time on one thread, for one batch of 440 images (8 episodes of 5-way
5-shot 6-query), so the figure is a lower bound for torchvision's own loader.

Usage: Scripts/bench_data_pil.py [cifar-100-binary folder]
"""
import os
import random
import sys
import time

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

MEAN = np.array([129.377, 124.106, 112.478], dtype=np.float32) / 255
STD = np.array([68.209, 65.431, 70.459], dtype=np.float32) / 255


def load_images(folder):
    records = np.fromfile(os.path.join(folder, "train.bin"), dtype=np.uint8).reshape(-1, 3074)
    return records[:, 2:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def augment(image, rng):
    padded = ImageOps.expand(image, border=4, fill=0)
    top, left = rng.randint(0, 8), rng.randint(0, 8)
    image = padded.crop((left, top, left + 32, top + 32))
    operations = [
        lambda img, f: ImageEnhance.Brightness(img).enhance(f),
        lambda img, f: ImageEnhance.Contrast(img).enhance(f),
        lambda img, f: ImageEnhance.Color(img).enhance(f),
    ]
    rng.shuffle(operations)
    for operation in operations:
        image = operation(image, rng.uniform(0.6, 1.4))
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    array = np.asarray(image, dtype=np.float32) / 255
    return ((array - MEAN) / STD).transpose(2, 0, 1)


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FEWSHOT_DATA_DIR", "../shared/data/cifar-100-binary")
    images = load_images(folder)
    rng = random.Random(1)
    batch_size = 440
    times = []
    for repeat in range(21):
        indices = [rng.randrange(len(images)) for _ in range(batch_size)]
        start = time.perf_counter()
        batch = np.stack([augment(Image.fromarray(images[i]), rng) for i in indices])
        elapsed = time.perf_counter() - start
        if repeat > 0:
            times.append(elapsed)
    times.sort()
    median = times[len(times) // 2]
    print(f"PIL augmentation, {batch_size} images, 1 thread: {median * 1000:.1f} ms median "
          f"({batch_size / median:.0f} images/s), batch shape {batch.shape}")


if __name__ == "__main__":
    main()
