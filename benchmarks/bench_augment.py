"""Image augmentation throughput: Gapscope's augmenter on the training device against torchvision
per-item transforms in DataLoader workers, measured in the same run.

    .venv/bin/python benchmarks/bench_augment.py               # CUDA when there is one, else CPU
    .venv/bin/python benchmarks/bench_augment.py --device cpu --batches 10

Imports neither streamlit nor imbalanced-learn, so it runs on a bare GPU machine with torch and
torchvision. Images are Fashion-MNIST items when the asset is installed (else 8×8 digits
from scikit-learn, upscaled), as uint8 tensors at two sizes: 1×28×28 (the small CNN) and 3×224×224
(fine-tuning MobileNetV2).

Paths, each over the same batches of 256 uint8 images and the same transforms:

- **on the device** — ``core.mitigate.augment.ImageAugmenter``: the batch is already on the
  training device; each item gets its own random parameters (the training loop's path);
- **DataLoader workers** — a ``Dataset`` whose ``__getitem__`` applies the same transforms per item,
  ``num_workers`` = usable cores (and 0, in the main process), batches collated and copied to the
  device: what a torchvision training script does;
- **one draw per batch** — the transforms on the whole batch at once (every item gets the same
  parameters): a floor for the cost, not an equal augmentation.

Printed: images/s of each path and the ratio of the device path to the workers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

BATCH = 256
RECIPES = {
    "flip + crop + rotation": ["flip", "resized_crop", "rotate"],
    "TrivialAugment + erasing": ["trivialaugment", "erasing"],
}


def images(n: int) -> torch.Tensor:
    """(n, 28, 28) uint8 images: Fashion-MNIST when installed, else upscaled 8×8 digits."""
    try:
        from core.data import assets
        from core.data.idx import read_idx

        x = read_idx(assets.asset_path("fashion-mnist", "fashion-mnist/train-images-idx3-ubyte.gz"))[:n]
    except Exception:  # any missing asset: fall back to scikit-learn's digits
        from sklearn.datasets import load_digits

        d = load_digits().images.astype(np.float32) * (255.0 / 16.0)
        x = np.repeat(np.repeat(d, 4, axis=1), 4, axis=2)[:, 2:-2, 2:-2]
        x = np.resize(x, (n, 28, 28))
    return torch.from_numpy(np.array(x, dtype=np.uint8))


def at_size(x: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    x = x[:, None].float()
    if size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.expand(-1, channels, -1, -1).round().clamp(0, 255).to(torch.uint8).contiguous()


class PerItem(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform) -> None:
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.transform(self.x[i]), self.y[i]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rate_device(augmenter, x: torch.Tensor, y: torch.Tensor, batches: int, device: torch.device) -> float:
    x, y = x.to(device), y.to(device)
    augmenter(x[:BATCH], y[:BATCH])  # warm-up
    _sync(device)
    t = time.perf_counter()
    for b in range(batches):
        s = slice(b * BATCH, (b + 1) * BATCH)
        augmenter(x[s], y[s])
    _sync(device)
    return batches * BATCH / (time.perf_counter() - t)


def rate_loader(transform, x: torch.Tensor, y: torch.Tensor, batches: int, device: torch.device, workers: int) -> float:
    data = PerItem(x[: batches * BATCH], y[: batches * BATCH], transform)
    loader = torch.utils.data.DataLoader(
        data, batch_size=BATCH, num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=False
    )
    t = time.perf_counter()
    for xb, _ in loader:
        xb.to(device, non_blocking=True)
    _sync(device)
    return batches * BATCH / (time.perf_counter() - t)


def rate_whole_batch(transform, x: torch.Tensor, batches: int, device: torch.device) -> float:
    x = x.to(device)
    transform(x[:BATCH])
    _sync(device)
    t = time.perf_counter()
    for b in range(batches):
        transform(x[b * BATCH : (b + 1) * BATCH])
    _sync(device)
    return batches * BATCH / (time.perf_counter() - t)


def main() -> int:
    from torchvision.transforms import v2

    from core.hardware import usable_cores
    from core.mitigate.augment import ImageAugmenter, image_transform

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, default=20, help="batches of 256 per measurement")
    parser.add_argument("--strength", type=float, default=0.5)
    args = parser.parse_args()
    device = torch.device(args.device)
    workers = usable_cores()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"Augmentation throughput · {name} · batch {BATCH} · {args.batches} batches · DataLoader workers {workers}")
    base = images(args.batches * BATCH)
    y = torch.from_numpy(np.arange(len(base)) % 10)
    print(
        f"| images | recipe | on the device | DataLoader, {workers} workers | DataLoader, main process | one draw per batch | device ÷ workers |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for size, channels in ((28, 1), (224, 3)):
        x = at_size(base, size, channels)
        for recipe, names in RECIPES.items():
            torch.manual_seed(0)
            augmenter = ImageAugmenter(names, strength=args.strength, size=(size, size), channels=channels, n_classes=10)
            per_item = v2.Compose([image_transform(n, args.strength, (size, size), channels) for n in names])
            on_device = rate_device(augmenter, x, y, args.batches, device)
            in_workers = rate_loader(per_item, x, y, args.batches, device, workers)
            in_main = rate_loader(per_item, x, y, args.batches, device, 0)
            whole = rate_whole_batch(per_item, x, args.batches, device)
            print(
                f"| {channels}×{size}×{size} | {recipe} | {on_device:,.0f}/s | {in_workers:,.0f}/s | {in_main:,.0f}/s | "
                f"{whole:,.0f}/s | {on_device / in_workers:.2f}× |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
