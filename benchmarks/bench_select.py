"""Selection: does keeping 30 % by a score beat keeping 30 % at random, and does active learning
reach random picking's accuracy with fewer labels?

    .venv/bin/python benchmarks/bench_select.py keep --dataset fashion     # keep 30 %: every score vs random, 3 seeds
    .venv/bin/python benchmarks/bench_select.py keep --dataset vader
    .venv/bin/python benchmarks/bench_select.py active --dataset fashion   # margin / diverse margin / entropy / k-center vs random, 3 seeds

**keep**: per seed, a scoring run on the whole train split (its training dynamics, as every run
keeps them), then for every score of ``core.select.keep`` a version keeping ``--fraction`` of the
train items (``kept_version``, each class's share kept) and a run on it with the scoring run's
settings and seed (``--balances proportional equal`` adds every score with equal per-class quotas;
``--hard-cuts 0.1 0.2 0.3`` one arm per hardest share set aside by ``ccs`` and ``easy_ambiguous``).
Per seed the kept arm with the best *val* macro-F1 is also reported ("chosen on val"), as a user
without test labels would choose. Test macro-F1, hallucination rate @0.9 and ECE at each run's result; the change
against random at the same seed, and over seeds its mean with a t 95 % interval (n − 1 degrees of
freedom). Models: a linear probe on frozen features (MobileNetV2 for Fashion-MNIST, MiniLM for
VADER), 10 epochs, as the Train page would run them; ``--model cnn`` trains the small CNN from
scratch on Fashion-MNIST instead.

**active**: ``core.select.active.rounds`` on the cached embeddings of the train split: a seeded,
class-stratified start of ``--k`` items, ``--rounds`` rounds of ``--k`` labels by each strategy and
at random from the same start, a logistic regression refitted each round, accuracy on the test
split. Reported: random's final accuracy and the labels each strategy needed to reach it (share of
random's labels).

Fashion-MNIST is a seeded draw of ``--train`` train items (val and test drawn in proportion) so a
probe's feature pass stays in minutes on 2 cores; VADER is whole. Every run is real, in a
temporary home that shares the usual home's embedding cache. The machine and its load are printed at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METRICS = ("macro_f1", "hallucination_rate", "ece")


def _data(name: str, n_train: int, seed: int = 0):
    from benchmarks.common import draw
    from core.data.demos import load_fashion_mnist, load_vader

    if name == "vader":
        return load_vader().dataset
    return draw(load_fashion_mnist().dataset, n_train, seed=seed, name=f"Fashion-MNIST ({n_train:,} train)")


def _config(args, vid: int, seed: int):
    from core.train.config import RunConfig

    if args.model == "cnn":
        return RunConfig(version_id=vid, model="small_cnn", epochs=args.epochs, batch_size=128, lr=3e-3, seed=seed, device="cpu")
    model = "minilm" if args.dataset == "vader" else "mobilenet_v2"
    return RunConfig(version_id=vid, model=model, finetune="linear_probe", epochs=args.epochs, seed=seed, device="cpu")


def _train(store, cfg) -> int:
    from core.train.worker import train_run

    run_id = store.create_run(cfg.version_id, cfg.to_dict())
    status = train_run(store, run_id)
    if status != "finished":
        raise RuntimeError(f"run {run_id} ended {status}: {store.run(run_id).message}")
    return run_id


def _result(store, run_id: int) -> dict[str, float]:
    """Test figures at the run's result, and its val macro-F1 there (``val_macro_f1``: what a choice
    between kept versions may read)."""
    from core.metrics.results import RunResults

    res = RunResults(store, run_id)
    values = res.values("test", res.result_step)
    out = {m: float(v) for m in METRICS if (v := values.get(m)) is not None}
    out["val_macro_f1"] = float(res.values("val", res.result_step)["macro_f1"] or float("nan"))
    return out


def _arm(score: str, balance: str, cut: float | None = None) -> str:
    name = score if cut is None else f"{score} (hardest {cut:.0%} set aside)"
    return name if balance == "proportional" else f"{name} (equal per class)"


def _recipes(args, seed: int, scoring: int):
    """(arm, KeepRecipe) of every arm at ``seed``: each score and balance, and for the scores that set
    the hardest items aside, each of ``--hard-cuts``."""
    from core.select.keep import CUT_SCORES, HARD_CUT, KEEP_SCORES, KeepRecipe

    for balance in args.balances:
        for score in KEEP_SCORES:
            cuts = args.hard_cuts if score in CUT_SCORES and args.hard_cuts else [None]
            for cut in cuts:
                recipe = KeepRecipe(
                    score, args.fraction, balance, hard_cut=HARD_CUT if cut is None else cut, seed=seed,
                    run_id=None if score == "random" else scoring,
                )  # fmt: skip
                yield _arm(score, balance, cut), recipe


def _chosen_on_val(by: dict, seeds: list[int], arms: list[str]) -> tuple[list[str], np.ndarray]:
    """Per seed, the kept arm (not random) with the best val macro-F1, and its test macro-F1 change
    against random at that seed."""
    picks, deltas = [], []
    for s in seeds:
        best = max((a for a in arms if a != "random"), key=lambda a: by[(s, a)]["val_macro_f1"])
        picks.append(best)
        deltas.append(by[(s, best)]["macro_f1"] - by[(s, "random")]["macro_f1"])
    return picks, np.array(deltas)


def keep(args, store) -> dict:
    import dataclasses

    from benchmarks.common import t_interval
    from core.select.keep import kept_version

    ds = _data(args.dataset, args.train)
    vid = store.save_dataset(ds, source="bench")
    print(f"{ds.name}: {int((ds.split == 0).sum()):,} train / {int((ds.split == 1).sum()):,} val / {int((ds.split == 2).sum()):,} test")
    rows: list[dict] = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        scoring = _train(store, _config(args, vid, seed))
        full = _result(store, scoring)
        rows.append({"seed": seed, "score": "every item", **full})
        print(f"seed {seed}: every item ({time.perf_counter() - t0:.0f} s) " + "  ".join(f"{k} {v:.4f}" for k, v in full.items()))
        for arm, recipe in _recipes(args, seed, scoring):
            kept = kept_version(store, vid, recipe)
            got = _result(store, _train(store, dataclasses.replace(_config(args, kept, seed))))
            rows.append({"seed": seed, "score": arm, **got})
            print(f"  {arm:>22}: " + "  ".join(f"{k} {v:.4f}" for k, v in got.items()), flush=True)
    print(f"\nkeep {args.fraction:.0%}: change against random at the same seed, mean over {len(args.seeds)} seeds [t 95 %]")
    by = {(r["seed"], r["score"]): r for r in rows}
    summary = {}
    arms = list(dict.fromkeys(r["score"] for r in rows if r["score"] != "every item"))
    for score in [a for a in arms if a != "random"]:
        line = []
        for m in METRICS:
            d = np.array([by[(s, score)][m] - by[(s, "random")][m] for s in args.seeds])
            mean, lo, hi = t_interval(d)
            summary[f"{score}/{m}"] = {"deltas": d.tolist(), "mean": mean, "low": lo, "high": hi}
            line.append(f"{m} {mean:+.4f} [{lo:+.4f}, {hi:+.4f}]")
        print(f"  {score:>22}: " + "  ".join(line))
    picks, d = _chosen_on_val(by, args.seeds, arms)
    mean, lo, hi = t_interval(d)
    summary["chosen on val/macro_f1"] = {"picks": picks, "deltas": d.tolist(), "mean": mean, "low": lo, "high": hi}
    print(f"  chosen on val per seed ({'; '.join(picks)}): macro_f1 {mean:+.4f} [{lo:+.4f}, {hi:+.4f}]")
    for m in METRICS:
        vals = np.array([by[(s, "random")][m] for s in args.seeds])
        print(f"  random {m}: {vals.mean():.4f} ± {vals.std(ddof=1) if len(vals) > 1 else 0:.4f}")
    return {"rows": rows, "summary": summary}


def active(args, store) -> dict:
    from core.select.active import labels_to_reach, rounds
    from core.shift.target import vectors

    ds = _data(args.dataset, args.train)
    t0 = time.perf_counter()
    x = vectors(ds)[0]
    print(f"{ds.name}: embeddings {x.shape} in {time.perf_counter() - t0:.0f} s")
    train = np.flatnonzero((ds.split == 0) & ds.labelled)
    test = np.flatnonzero(ds.split == 2)
    out: dict = {"runs": []}
    for strategy in args.strategies:
        for seed in args.seeds:
            t0 = time.perf_counter()
            c = rounds(
                x[train],
                ds.labels[train],
                x[test],
                ds.labels[test],
                strategy=strategy,
                start=args.k,
                k=args.k,
                n_rounds=args.rounds,
                seed=seed,
            )
            rnd = c[c["picker"] == "random"]
            final, spent = float(rnd["accuracy"].iloc[-1]), int(rnd["labels"].iloc[-1])
            reached = labels_to_reach(c[c["picker"] == strategy], final)
            share = None if reached is None else reached / spent
            own = float(c[c["picker"] == strategy]["accuracy"].iloc[-1])
            print(
                f"{strategy:>14} seed {seed}: random {final:.4f} at {spent:,} labels; {strategy} {own:.4f} at {spent:,}; "
                f"reached random's final at {reached if reached is not None else 'never'}"
                f"{'' if share is None else f' ({share:.0%})'}  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
            out["runs"].append(
                {"strategy": strategy, "seed": seed, "random_final": final, "own_final": own, "labels": spent, "reached": reached}
            )
    for strategy in args.strategies:
        shares = [r["reached"] / r["labels"] if r["reached"] else np.inf for r in out["runs"] if r["strategy"] == strategy]
        print(f"{strategy}: labels to reach random's final accuracy, share of random's: " + ", ".join(f"{s:.0%}" for s in shares))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=["keep", "active"])
    parser.add_argument("--dataset", choices=["fashion", "vader"], default="fashion")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--model", choices=["probe", "cnn"], default="probe")
    parser.add_argument("--balances", nargs="+", default=["proportional"], choices=["proportional", "equal"], help="keep: per-class quotas")
    parser.add_argument(
        "--hard-cuts", type=float, nargs="*", default=[],
        help="keep: the hardest shares ccs and easy_ambiguous set aside, one arm each (default: the product's)",
    )  # fmt: skip
    parser.add_argument("--train", type=int, default=12000, help="Fashion-MNIST: train items drawn")
    parser.add_argument("--k", type=int, default=50, help="active: labels per round (and the start)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--strategies", nargs="+", default=["margin", "diverse_margin", "entropy", "kcenter"])
    parser.add_argument("--json", default="", help="write the figures to this file")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}")
    from benchmarks.common import temporary_home
    from core.store import Store

    home = temporary_home("gapscope-bench-select-")  # runs and versions there; embeddings shared
    try:
        out = (keep if args.experiment == "keep" else active)(args, Store(home))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))
    print(f"load at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
