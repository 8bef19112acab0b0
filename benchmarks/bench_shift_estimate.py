"""Label-free accuracy on a shifted target: ATC, BBSE and confidence against the truth.

    .venv/bin/python benchmarks/bench_shift_estimate.py               # 3 seeds
    .venv/bin/python benchmarks/bench_shift_estimate.py --seeds 1     # a quick look

Every model is a real run in a temporary home, trained by ``core.train.worker.train_run``; every
estimate is the product's (``core.shift.target.run_on_target``: the run's val probabilities at
its result and its model applied to the target by ``core.train.apply``).

- **VADER domains**: for each of the four domains, a version holding that domain's texts (its own
  train / val / test split) and a MiniLM linear-probe run on it (10 epochs); the targets are the
  texts of each other domain — 12 ordered pairs.
- **Census-Income year split**: a version holding the 1994 answers (the demo's 20,000) and a tabular
  MLP run on it (10 epochs); the target is the 1995 answers — and the other way round, 2 pairs.

For each pair and seed: the true accuracy on the target, and |estimate − truth| for ATC (negative
entropy and max confidence), mean confidence, temperature-scaled mean confidence and BBSE. The goal:
mean |ATC − truth| over the pairs ≤ 0.03, below plain mean confidence's. The machine and its load
are printed at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METHODS = ("atc_negent", "atc_maxconf", "mean_confidence", "mean_calibrated_confidence", "bbse")


def _train(store, ds, seed: int, **cfg_kw) -> int:
    from core.train.config import RunConfig
    from core.train.worker import train_run

    vid = store.save_dataset(ds, source="bench")
    cfg = RunConfig(version_id=vid, seed=seed, **cfg_kw)
    run_id = store.create_run(vid, cfg.to_dict())
    status = train_run(store, run_id)
    if status != "finished":
        raise RuntimeError(f"run {run_id} ended {status}: {store.run(run_id).message}")
    return run_id


def _pair(store, run_id: int, target, name: str, seed: int) -> dict:
    from core.shift.target import run_on_target

    est = run_on_target(store, run_id, target).estimate
    err = est.errors()
    row = {"pair": name, "seed": seed, "true_accuracy": est.truth["accuracy"], **{f"est_{k}": v for k, v in est.accuracy.items()}}
    row.update({f"err_{k}": err[k] for k in METHODS})
    print(
        f"  {name:44s} seed {seed} · true {est.truth['accuracy']:.3f} · "
        + " · ".join(f"{k} {est.accuracy[k]:.3f} (|err| {err[k]:.3f})" for k in METHODS),
        flush=True,
    )
    return row


def vader(store, seed: int) -> list[dict]:
    from core.data.demos import load_vader

    ds = load_vader().dataset
    domain = ds.meta["domain"].astype(str).to_numpy()
    rows = []
    for a in sorted(set(domain)):
        run_id = _train(
            store, ds.subset(np.flatnonzero(domain == a), name=f"VADER {a}"), seed, model="minilm", finetune="linear_probe", epochs=10
        )
        for b in sorted(set(domain) - {a}):
            rows.append(_pair(store, run_id, ds.subset(np.flatnonzero(domain == b)), f"VADER {a} → {b}", seed))
    return rows


def census(store, seed: int) -> list[dict]:
    from core.data.demos import load_census_income

    ds = load_census_income().dataset
    year = ds.meta["year"].to_numpy()
    rows = []
    for a, b in ((1994, 1995), (1995, 1994)):
        run_id = _train(store, ds.subset(np.flatnonzero(year == a), name=f"Census {a}"), seed, model="auto", epochs=10)
        rows.append(_pair(store, run_id, ds.subset(np.flatnonzero(year == b)), f"Census {a} → {b}", seed))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", choices=["vader", "census"])
    args = parser.parse_args()
    from core.store import Store

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}", flush=True)
    from benchmarks.common import temporary_home

    home = temporary_home("gapscope-bench-shift-")  # runs and versions there; embeddings shared
    rows: list[dict] = []
    try:
        store = Store(home)
        for seed in range(args.seeds):
            if args.only != "census":
                rows += vader(store, seed)
            if args.only != "vader":
                rows += census(store, seed)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    import pandas as pd

    df = pd.DataFrame(rows)
    print(f"\nload at the end {os.getloadavg()}")
    for group, part in (("VADER", df[df.pair.str.startswith("VADER")]), ("Census", df[df.pair.str.startswith("Census")]), ("all", df)):
        if part.empty:
            continue
        per_seed = part.groupby("seed")[[f"err_{k}" for k in METHODS]].mean()
        print(f"{group}: mean |estimate − truth| over {part.pair.nunique()} pairs (mean over seeds, [min, max] across seeds)")
        for k in METHODS:
            v = per_seed[f"err_{k}"]
            print(f"  {k:28s} {v.mean():.4f} [{v.min():.4f}, {v.max():.4f}]")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
