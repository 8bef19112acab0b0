"""Explanations: do the attributions name what the model relies on? Deletion curves against random
removal and against plain gradients.

    .venv/bin/python benchmarks/bench_explain.py digits            # the small CNN on 8×8 digits, 3 training seeds
    .venv/bin/python benchmarks/bench_explain.py vader --seeds 0   # MiniLM fine-tuned on a VADER draw

Per training seed: a real run in a temporary home (``core.train.worker.train_run``), its result
model loaded as the pages load it (``core.train.apply.load_run_model``), and for ``--items`` test
items the attribution of the class the model predicts by every method of ``core.explain``; then
the deletion curve of each (the most attributed pixels blacked out / words deleted first,
``core.explain.faithfulness``) and of ``--permutations`` random orders. Reported per method: the
mean area under the deletion curve, its ratio to random's with a bootstrap 95 % interval over the
items, the ratio to plain gradients' the same way, and the seconds per attribution. The goal:
area ≤ 0.7 × random's, and below plain gradients'. The machine and its load are printed at the
start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _data(name: str, n_train: int, seed: int = 0):
    from benchmarks.common import draw
    from core.data.demos import load_digits_8x8, load_vader

    if name == "digits":
        return load_digits_8x8().dataset
    return draw(load_vader().dataset, n_train, seed=seed, name=f"VADER ({n_train:,} train)")


def _config(args, vid: int, seed: int):
    from core.train.config import RunConfig

    if args.dataset == "digits":
        return RunConfig(version_id=vid, model="small_cnn", epochs=args.epochs or 10, batch_size=64, lr=3e-3, seed=seed, device="cpu")
    return RunConfig(version_id=vid, model="minilm", finetune="full", epochs=args.epochs or 2, batch_size=32, seed=seed, device="cpu")


def _ratio(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> tuple[float, float, float]:
    """mean(a) / mean(b) over paired items, with a bootstrap 95 % interval over the items."""
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boots = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    return float(a.mean() / b.mean()), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def one_seed(args, store, vid: int, seed: int) -> dict:
    from core.explain.attribute import Explainer
    from core.explain.faithfulness import area, order_by
    from core.explain.kinds import METHODS
    from core.metrics.results import RunResults
    from core.train.apply import load_run_model
    from core.train.worker import train_run

    cfg = _config(args, vid, seed)
    run_id = store.create_run(vid, cfg.to_dict())
    t0 = time.perf_counter()
    if train_run(store, run_id) != "finished":
        raise RuntimeError(store.run(run_id).message)
    res = RunResults(store, run_id)
    acc = res.values("test", res.result_step).get("accuracy")
    print(f"seed {seed}: run {run_id} trained in {time.perf_counter() - t0:.0f} s, test accuracy {acc:.4f}")
    t0 = time.perf_counter()
    model = load_run_model(store, run_id, device="cpu")
    ex = Explainer(model)
    rng = np.random.default_rng(seed)
    items = rng.choice(np.flatnonzero(model.ds.split == 2), size=args.items, replace=False)
    first = int(items[0])  # what the Runs page does for a picked item: load the model, attribute the answer and the given class
    ex.attribute(first, int(model.classes[int(np.argmax(ex.probabilities(first)))]), "integrated_gradients")
    ex.attribute(first, int(model.ds.labels[first]), "integrated_gradients")
    on_demand = time.perf_counter() - t0
    print(f"  one item on demand (model loaded, both classes by Integrated Gradients): {on_demand:.2f} s")
    methods = METHODS[model.ds.modality]
    areas: dict[str, list[float]] = {m: [] for m in (*methods, "random")}
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    for i in items.tolist():
        pred = int(model.classes[int(np.argmax(ex.probabilities(i)))])
        for m in methods:
            a = ex.attribute(i, pred, m)
            seconds[m].append(a.seconds)
            areas[m].append(area(ex.deletion(a, order_by(a.values))))
        n_parts = a.values.size
        areas["random"].append(float(np.mean([area(ex.deletion(a, rng.permutation(n_parts))) for _ in range(args.permutations)])))
    arr = {m: np.asarray(v) for m, v in areas.items()}
    out = {"seed": seed, "run": run_id, "accuracy": acc, "items": len(items), "on_demand_s": on_demand, "methods": {}}
    for m in methods:
        vs_random = _ratio(arr[m], arr["random"], rng)
        vs_grad = _ratio(arr[m], arr["gradients"], rng)
        out["methods"][m] = {
            "area": float(arr[m].mean()),
            "vs_random": vs_random,
            "vs_gradients": vs_grad,
            "seconds": float(np.mean(seconds[m])),
        }
        print(
            f"  {m:22s} area {arr[m].mean():.4f} · × random {vs_random[0]:.3f} [{vs_random[1]:.3f}, {vs_random[2]:.3f}]"
            f" · × gradients {vs_grad[0]:.3f} [{vs_grad[1]:.3f}, {vs_grad[2]:.3f}] · {np.mean(seconds[m]):.2f} s per item"
        )
    out["random_area"] = float(arr["random"].mean())
    print(f"  {'random':22s} area {arr['random'].mean():.4f}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["digits", "vader"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--items", type=int, default=50, help="test items explained per seed")
    parser.add_argument("--permutations", type=int, default=3, help="random removal orders per item")
    parser.add_argument("--epochs", type=int, default=0, help="0: 10 for digits, 2 for VADER")
    parser.add_argument("--train", type=int, default=3000, help="VADER: train texts drawn (val and test in proportion)")
    parser.add_argument("--json", default="", help="write the figures to this file")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}")
    from core.store import Store

    home = Path(tempfile.mkdtemp(prefix="gapscope-bench-explain-"))
    try:
        os.environ["GAPSCOPE_HOME"] = str(home)
        store = Store(home)
        ds = _data(args.dataset, args.train)
        vid = store.save_dataset(ds, source="bench")
        print(f"{ds.name}: {int((ds.split == 0).sum()):,} train / {int((ds.split == 2).sum()):,} test")
        out = [one_seed(args, store, vid, seed) for seed in args.seeds]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))
    print(f"load at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
