"""Robustness: PGD on the Fashion-MNIST CNN, and what adversarial training buys.

    .venv/bin/python benchmarks/bench_robust.py fashion                   # baseline vs FGSM-RS and PGD-3 training, 3 seeds
    .venv/bin/python benchmarks/bench_robust.py fashion --arms baseline pgd --seeds 0
    .venv/bin/python benchmarks/bench_robust.py vader --seeds 0       # word substitution; adversarial augmentation against the baseline

Per seed, in a temporary home: the small CNN trained from scratch on a seeded draw of Fashion-MNIST
(``--train`` items, val and test drawn in proportion) for ``--epochs``, once plainly and once per
adversarial-training arm (``Mitigations.adversarial`` at ``--train-eps``); every run's result model
then attacked by PGD-``--steps`` (random start) on ``--items`` test items at each ε of ``--eps``
(``core.robust.evaluate.evaluate_run``, what the Runs page runs). Reported: clean and robust
accuracy, confident-wrong @τ under attack; per arm, the change against the baseline at the same
seed, and over seeds its mean with a t 95 % interval. The goal: robust accuracy at ε = 0.1 up by
≥ 20 points, clean accuracy down by ≤ 5.

``vader``: MiniLM fine-tuned (full, ``--epochs`` default 2) on a seeded draw of ``--train`` VADER
texts; the word-substitution attack (at most ``--words`` words, WordNet synonyms) on ``--items`` test
texts: accuracy, attack success and words changed per budget; then adversarial augmentation
(``core.robust.augment``: the attack on ``--augment`` train texts, those that fool the model added
with their true labels) and a run with the same settings on that version, attacked the same way.

The machine and its load are printed at the start and the end.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ARMS = {
    "baseline": None,
    "fgsm": {"method": "fgsm"},
    "pgd": {"method": "pgd", "steps": 3},
    "pgd_half": {"method": "pgd", "steps": 3, "share": 0.5},  # half of each batch attacked, half clean
    "pgd_third": {"method": "pgd", "steps": 3, "share": 0.3},  # 30 % of each batch attacked
}


def _data(n_train: int, seed: int = 0):
    from benchmarks.common import draw
    from core.data.demos import load_fashion_mnist

    return draw(load_fashion_mnist().dataset, n_train, seed=seed, name=f"Fashion-MNIST ({n_train:,} train)")


def _vader(n_train: int, seed: int = 0):
    from benchmarks.common import draw
    from core.data.demos import load_vader

    return draw(load_vader().dataset, n_train, seed=seed, name=f"VADER ({n_train:,} train)")


def text(args, store) -> list[dict]:
    """The word attack on MiniLM runs: the plain run, then the run on its adversarially augmented version."""
    from core.robust.augment import adversarial_version, augmented_config
    from core.robust.evaluate import evaluate_run
    from core.train.config import RunConfig
    from core.train.worker import train_run

    ds = _vader(args.train)
    vid = store.save_dataset(ds, source="bench")
    print(f"{ds.name}: {int((ds.split == 0).sum()):,} train / {int((ds.split == 2).sum()):,} test")
    out = []
    for seed in args.seeds:
        cfg = RunConfig(version_id=vid, model="minilm", finetune="full", epochs=args.epochs or 2, batch_size=32, seed=seed, device="cpu")
        runs = {"baseline": store.create_run(vid, cfg.to_dict())}
        for arm in ("baseline", "augmented"):
            if arm == "augmented":
                t0 = time.perf_counter()
                new = adversarial_version(store, runs["baseline"], n_items=args.augment, max_words=args.words, seed=seed)
                added = store.version(new).params["adversarial_texts"]["added"]
                print(
                    f"seed {seed}: {added} of {args.augment} attacked train texts fooled the baseline ({time.perf_counter() - t0:.0f} s); added"
                )
                runs[arm] = store.create_run(new, augmented_config(store, runs["baseline"], new).to_dict())
            if train_run(store, runs[arm]) != "finished":
                raise RuntimeError(store.run(runs[arm]).message)
            rec = evaluate_run(store, runs[arm], attack="words", max_words=args.words, n_items=args.items, seed=seed)
            row = {"seed": seed, "arm": arm, "clean": rec["clean"]["accuracy"], "seconds": rec["seconds"],
                   **{f"{k}@{b['budget']:g}": b[k] for b in rec["budgets"] for k in ("accuracy", "success_rate", "words_changed", "confident_wrong")}}  # fmt: skip
            out.append(row)
            print(f"seed {seed} {arm:9s} " + " · ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("seed", "arm")))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["fashion", "vader"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=["baseline", "fgsm", "pgd"], choices=list(ARMS))
    parser.add_argument("--train", type=int, default=0, help="train items drawn (default 12,000 Fashion-MNIST images, 3,000 VADER texts)")
    parser.add_argument("--epochs", type=int, default=0, help="default 10 for the CNN, 2 for MiniLM")
    parser.add_argument("--words", type=int, default=3, help="vader: words changed, at most")
    parser.add_argument("--augment", type=int, default=600, help="vader: train texts attacked for the augmentation")
    parser.add_argument("--train-eps", type=float, default=0.1)
    parser.add_argument("--eps", type=float, nargs="+", default=[0.03, 0.05, 0.1])
    parser.add_argument("--steps", type=int, default=10, help="PGD steps of the evaluation")
    parser.add_argument("--items", type=int, default=0, help="test items attacked (default 1,000 images, 200 texts)")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    args.train = args.train or (3000 if args.dataset == "vader" else 12000)
    args.items = args.items or (200 if args.dataset == "vader" else 1000)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}")
    from benchmarks.common import t_interval
    from core.mitigate.settings import Mitigations
    from core.robust.evaluate import evaluate_run
    from core.store import Store
    from core.train.config import RunConfig
    from core.train.worker import train_run

    home = Path(tempfile.mkdtemp(prefix="gapscope-bench-robust-"))
    out: list[dict] = []
    try:
        os.environ["GAPSCOPE_HOME"] = str(home)
        store = Store(home)
        if args.dataset == "vader":
            out = text(args, store)
            if args.json:
                Path(args.json).write_text(json.dumps(out, indent=1))
            print(f"load at the end {os.getloadavg()}")
            return 0
        ds = _data(args.train)
        vid = store.save_dataset(ds, source="bench")
        print(f"{ds.name}: {int((ds.split == 0).sum()):,} train / {int((ds.split == 2).sum()):,} test")
        for seed in args.seeds:
            for arm in args.arms:
                mit = Mitigations.from_dict({} if ARMS[arm] is None else {"adversarial": {**ARMS[arm], "eps": args.train_eps}})[0]
                cfg = RunConfig(version_id=vid, model="small_cnn", epochs=args.epochs or 10, batch_size=128, lr=3e-3, seed=seed, device="cpu",
                                mitigations=mit)  # fmt: skip
                run_id = store.create_run(vid, cfg.to_dict())
                t0 = time.perf_counter()
                if train_run(store, run_id) != "finished":
                    raise RuntimeError(store.run(run_id).message)
                train_s = time.perf_counter() - t0
                rec = evaluate_run(store, run_id, attack="pgd", eps=tuple(args.eps), steps=args.steps, n_items=args.items, seed=seed)
                row = {"seed": seed, "arm": arm, "train_s": train_s, "eval_s": rec["seconds"], "clean": rec["clean"]["accuracy"],
                       **{f"acc@{b['budget']:g}": b["accuracy"] for b in rec["budgets"]},
                       **{f"cw@{b['budget']:g}": b["confident_wrong"] for b in rec["budgets"]}}  # fmt: skip
                out.append(row)
                print(
                    f"seed {seed} {arm:8s} train {train_s:.0f} s · "
                    + " · ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("seed", "arm", "train_s"))
                )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    base = {r["seed"]: r for r in out if r["arm"] == "baseline"}
    for arm in args.arms:
        if arm == "baseline" or not base:
            continue
        mine = [r for r in out if r["arm"] == arm and r["seed"] in base]
        for key in ["clean", *[f"acc@{e:g}" for e in args.eps]]:
            m, lo, hi = t_interval([r[key] - base[r["seed"]][key] for r in mine])
            print(f"{arm}: change in {key} against the baseline, mean over {len(mine)} seed(s): {m:+.4f} [{lo:+.4f}, {hi:+.4f}]")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    print(f"load at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
