"""The Diagnose page's time estimate against the pipeline's measured time, after the embeddings.

    .venv/bin/python benchmarks/bench_diagnose_time.py            # Fashion-MNIST 10k and 70k, VADER, Census 20k
    .venv/bin/python benchmarks/bench_diagnose_time.py --repeats 1

``core.diagnose.pipeline.detection_seconds`` is the rough time the Diagnose page shows for everything after the
embeddings (the label-issue detector, duplicates, outliers, coverage and the map): ``DETECT_S + n ·
DETECT_PER_ITEM_S``. This runs ``pipeline.diagnose`` (no diagnosis cache; the embeddings cached, and warmed by a
first run that is not counted) on the demo datasets at a few sizes and prints, per set, the estimate, the measured
time after the embeddings (the median of ``--repeats`` runs) and the stages' seconds. The estimate is meant to
be near or above the measured time on the machine it was set on (the 2-core CPU of benchmarks/RESULTS.md):
a progress bar that runs past its estimate reads as a hang.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _sets() -> list[tuple[str, object]]:
    from core.data import demos

    fashion = demos.load_fashion_mnist().dataset
    census = demos.load_census_income().dataset
    pick = np.sort(np.random.default_rng(0).choice(len(fashion), 10_000, replace=False))
    rows = np.sort(np.random.default_rng(0).choice(len(census), 20_000, replace=False))
    return [
        ("Fashion-MNIST 10k (images)", fashion.subset(pick)),
        ("Fashion-MNIST 70k (images)", fashion),
        ("VADER 23.7k (texts)", demos.load_vader().dataset),
        ("Census-Income 20k (table)", census.subset(rows)),
    ]


def _time_after_embeddings(ds, repeats: int) -> tuple[float, dict[str, float]]:
    from core.diagnose import pipeline

    pipeline.diagnose(ds, cache=False)  # warm: the embeddings cached, first-call costs paid
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        d = pipeline.diagnose(ds, cache=False)
        runs.append((time.perf_counter() - t - d.seconds.get("embedding", 0.0), d.seconds))
    runs.sort(key=lambda r: r[0])
    return runs[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from core.diagnose import pipeline

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}", flush=True)
    print("\n| set | items | estimate s | measured s, after the embeddings (median) | measured ÷ estimate | largest stages (s) |")
    print("|---|---|---|---|---|---|")
    for name, ds in _sets():
        estimate = pipeline.detection_seconds(ds)
        measured, stages = _time_after_embeddings(ds, args.repeats)
        top = sorted(((v, k) for k, v in stages.items() if k != "embedding"), reverse=True)[:4]
        largest = ", ".join(f"{k} {v:.2f}" for v, k in top)
        print(f"| {name} | {len(ds):,} | {estimate:.1f} | {measured:.1f} | {measured / estimate:.2f} | {largest} |", flush=True)
    print(f"\nload at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
