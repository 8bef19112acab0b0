"""How long the full metric summary takes on a Fashion-MNIST-sized test set (70,000 × 10).

.venv/bin/python benchmarks/bench_metrics.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import metrics as M


def main() -> None:
    rng = np.random.default_rng(0)
    n, k = 70_000, 10
    logits = rng.normal(size=(n, k)) * 3
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    labels = rng.integers(0, k, n)
    labels[:5_000] = -1  # 5k unknown-class inputs
    counts = rng.integers(0, 300, k)
    M.summary(probs, labels, logits=logits, train_counts=counts)  # warm-up
    times = []
    for _ in range(5):
        t = time.perf_counter()
        M.summary(probs, labels, logits=logits, train_counts=counts)
        times.append(time.perf_counter() - t)
    slices = rng.integers(0, 4, n)
    t = time.perf_counter()
    M.metrics_by_slice(probs, labels, slices, logits=logits, train_counts=counts)
    t_slices = time.perf_counter() - t
    print(f"metrics.summary {n:,}×{k}: best {min(times) * 1e3:.1f} ms, median {np.median(times) * 1e3:.1f} ms")
    print(f"metrics.metrics_by_slice (4 slices): {t_slices * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
