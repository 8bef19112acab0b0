"""How long the paired bootstrap of a comparison takes: two runs on 10,000 shared test items
(10 classes, 5 % of them from a class neither trained on), every interval metric at once.

.venv/bin/python benchmarks/bench_intervals.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.compare.intervals import BOOT_METRICS, N_BOOT, Answers, paired_bootstrap, paired_mcnemar


def _answers(rng: np.random.Generator, y: np.ndarray, k: int) -> Answers:
    z = rng.normal(size=(len(y), k)) * 3
    z[np.arange(len(y)), np.maximum(y, 0)] += 2.5  # mostly right
    p = np.exp(z - z.max(1, keepdims=True))
    return Answers(p / p.sum(1, keepdims=True), y, np.arange(len(y)))


def main() -> None:
    rng = np.random.default_rng(0)
    n, k = 10_000, 10
    y = rng.integers(0, k, n)
    y[rng.random(n) < 0.05] = -1
    a, b = _answers(rng, y, k), _answers(rng, y, k)
    paired_bootstrap(a, b, tau=0.9, n_boot=100)  # warm-up
    for n_boot in sorted({N_BOOT, 2000}):
        times, cpu = [], []
        for _ in range(5):
            t, c = time.perf_counter(), time.process_time()
            out = paired_bootstrap(a, b, tau=0.9, n_boot=n_boot)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        print(
            f"paired_bootstrap {n:,} items × {len(out)} metrics ({len(BOOT_METRICS)} asked), {n_boot:,} resamples: "
            f"wall best {min(times):.3f} s, median {np.median(times):.3f} s; CPU time best {min(cpu):.3f} s"
        )
    t = time.perf_counter()
    test = paired_mcnemar(a, b)
    print(f"paired_mcnemar: {(time.perf_counter() - t) * 1e3:.1f} ms (p = {test.p_value:.3g})" if test else "no known items")
    acc = out["accuracy"]
    print(f"accuracy {acc.a:.4f} → {acc.b:.4f}: Δ {acc.delta:+.4f} [{acc.low:+.4f}, {acc.high:+.4f}] {acc.verdict}")


if __name__ == "__main__":
    main()
