"""Drift tests on embeddings: false alarms without shift, detection with one, time per test.

    .venv/bin/python benchmarks/bench_shift.py                 # 20 seeds, 500 items per side
    .venv/bin/python benchmarks/bench_shift.py --seeds 5       # a quick look

The tests are the product's (``core.shift.detect``): ``mmd_test`` (500 permutations) and
``domain_classifier_test`` (5-fold ridge classifier AUC, permutation p-value), α = 0.05, each side drawn seeded.

- **VADER** (MiniLM embeddings of all 23.7k texts, ``core.embed.embeddings.embed``, cached like the
  app's): *no shift* — the texts shuffled by the seed and cut in two halves, each side drawn from
  one half; *shift* — every pair of the four domains (tweets, movie reviews, product reviews, NYT
  editorials), reference from one domain and target from the other.
- **Fashion-MNIST** (MobileNetV2 embeddings at the app's default size): seeded pools of 5,000 train
  and 5,000 test images; *no shift* — both pools together, shuffled by the seed and cut in two
  halves; *train vs test as shipped* — the train pool against the test pool; *shift* — the train
  pool against the test pool rotated by 15° and 30° (``core.shift.made.corrupt_images``, bilinear).

Reports, per scenario and test: the share of seeds where the test fired (false-alarm rate without
shift, detection rate with one) and the mean and largest time per test. The goal: false alarms
≤ 0.1, detection ≥ 0.95 at 500 per side, ≤ 5 s per test on 2 cores. The machine and its load
(``os.getloadavg``) are printed at the start and the end.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.shift import detect as D

TESTS = {"mmd": D.mmd_test, "domain_classifier": D.domain_classifier_test}


def embedded(ds, label: str) -> np.ndarray:
    from core.embed.embeddings import embed

    t = time.perf_counter()
    X = np.asarray(embed(ds))
    print(f"{label}: {len(ds):,} items embedded in {time.perf_counter() - t:.0f} s (a cache hit is fast)", flush=True)
    return X


def scenario(name: str, draws, seeds: int, n: int) -> dict:
    """Run both tests on ``draws(seed) → (reference, target)`` for each seed."""
    out = {}
    for test, fn in TESTS.items():
        fired, secs = [], []
        for s in range(seeds):
            ref, tgt = draws(s)
            r = fn(ref, tgt, n_per_side=n, seed=s)
            fired.append(r.shifted)
            secs.append(r.seconds)
        out[test] = {"rate": float(np.mean(fired)), "seeds": seeds, "mean_s": float(np.mean(secs)), "max_s": float(np.max(secs))}
        print(
            f"  {name:38s} {test:18s} fired {np.mean(fired):5.2f} of {seeds} seeds · {np.mean(secs):.2f} s mean, {np.max(secs):.2f} s max",
            flush=True,
        )
    return out


def vader(seeds: int, n: int) -> dict:
    from core.data.demos import load_vader

    ds = load_vader().dataset
    X = embedded(ds, "VADER (MiniLM)")
    domain = ds.meta["domain"].astype(str).to_numpy()
    results = {}

    def halves(s: int):
        order = np.random.default_rng(1000 + s).permutation(len(X))
        return X[order[: len(X) // 2]], X[order[len(X) // 2 :]]

    results["VADER, no shift (random halves)"] = scenario("VADER, no shift (random halves)", halves, seeds, n)
    for a, b in itertools.combinations(sorted(set(domain)), 2):
        name = f"VADER, {a} → {b}"
        results[name] = scenario(name, lambda s, a=a, b=b: (X[domain == a], X[domain == b]), seeds, n)
    return results


def fashion(seeds: int, n: int, angles: tuple[float, ...]) -> dict:
    from core.data.dataset import Dataset
    from core.data.demos import load_fashion_mnist
    from core.shift.made import corrupt_images

    ds = load_fashion_mnist().dataset
    rng = np.random.default_rng(0)
    train = np.sort(rng.choice(np.flatnonzero(ds.split == 0), 5000, replace=False))
    test = np.sort(rng.choice(np.flatnonzero(ds.split == 2), 5000, replace=False))

    def pool(rows: np.ndarray, angle: float) -> np.ndarray:
        items = ds.items[rows] if angle == 0 else corrupt_images(ds.items[rows], "rotate", angle)
        sub = Dataset(
            name=f"Fashion-MNIST rotated {angle:g}", modality="image", items=items, labels=ds.labels[rows],
            class_names=ds.class_names, split=np.zeros(len(rows), np.int8),
        )  # fmt: skip
        return embedded(sub, f"Fashion-MNIST pool, rotated {angle:g}°")

    ref, same = pool(train, 0), pool(test, 0)
    both = np.vstack([ref, same])

    def halves(s: int):
        order = np.random.default_rng(1000 + s).permutation(len(both))
        return both[order[: len(both) // 2]], both[order[len(both) // 2 :]]

    name = "Fashion-MNIST, no shift (random halves)"
    results = {name: scenario(name, halves, seeds, n)}
    name = "Fashion-MNIST, train vs test as shipped"
    results[name] = scenario(name, lambda s: (ref, same), seeds, n)
    for angle in angles:
        tgt = pool(test, angle)
        name = f"Fashion-MNIST, rotated {angle:g}°"
        results[name] = scenario(name, lambda s, tgt=tgt: (ref, tgt), seeds, n)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--n", type=int, default=500, help="items per side")
    parser.add_argument("--only", choices=["vader", "fashion"])
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}", flush=True)
    results: dict = {}
    if args.only != "fashion":
        results.update(vader(args.seeds, args.n))
    if args.only != "vader":
        results.update(fashion(args.seeds, args.n, (15.0, 30.0)))
    print(f"load at the end {os.getloadavg()}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
