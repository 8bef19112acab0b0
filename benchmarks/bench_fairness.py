"""Fairness: on Census-Income (KDD) with sex as the group, do re-weighting or thresholds per group
cut the equalized odds difference by half at ≤ 2 points of accuracy?

    .venv/bin/python benchmarks/bench_fairness.py                  # 3 seeds, the demo's 40,000 rows
    .venv/bin/python benchmarks/bench_fairness.py --column race --seeds 0

Per seed, in a temporary home: the tabular MLP trained on the Census-Income demo (the Data page's
draw: 20,000 rows of each survey year, UCI's split; ``--epochs`` 10, batch ``--batch`` 256); the run measured by
``--column`` (``core.fairness.evaluate.run_fairness``) with thresholds per group fitted on val for
equalized odds; a re-weighted version (Kamiran & Calders, ``reweighed_version``) and a run on it with
the same settings and the ``importance`` sampler. Both fixes are compared with the plain run on the
same test items: equalized odds difference, demographic parity difference and accuracy, each change
with a paired bootstrap 95 % interval. The machine and its load are printed at the start and the
end.
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


def _decisions(store, run_id: int, positive: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from core.metrics.results import RunResults

    res = RunResults(store, run_id)
    ds = store.load_dataset(res.row.version_id)
    rows, probs = res.files.heldout_probs(ds.n_classes, split="test", step=res.result_step)
    return rows, ds.labels[rows] == positive, probs.argmax(axis=1) == positive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--column", default="sex")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores; load {os.getloadavg()}")
    from core.data.demos import load_census_income
    from core.fairness.evaluate import rates_by_group, run_fairness
    from core.fairness.groups import bootstrap_gaps, sensitive_groups
    from core.fairness.mitigate import reweighed_config, reweighed_version
    from core.store import Store
    from core.train.config import RunConfig
    from core.train.worker import train_run

    home = Path(tempfile.mkdtemp(prefix="gapscope-bench-fairness-"))
    out: list[dict] = []
    try:
        os.environ["GAPSCOPE_HOME"] = str(home)
        store = Store(home)
        ds = load_census_income().dataset
        vid = store.save_dataset(ds, source="bench")
        print(f"{ds.name}: {int((ds.split == 0).sum()):,} train / {int((ds.split == 1).sum()):,} val / {int((ds.split == 2).sum()):,} test")
        rw_vid = reweighed_version(store, vid, args.column)
        for seed in args.seeds:
            t0 = time.perf_counter()
            cfg = RunConfig(version_id=vid, model="auto", epochs=args.epochs, batch_size=args.batch, seed=seed, device="cpu")
            base = store.create_run(vid, cfg.to_dict())
            if train_run(store, base) != "finished":
                raise RuntimeError(store.run(base).message)
            rec = run_fairness(store, base, args.column, constraint="equalized_odds", seed=seed)
            pos = rec["positive"]
            rw = store.create_run(rw_vid, reweighed_config(store, base, rw_vid, args.column).to_dict())
            if train_run(store, rw) != "finished":
                raise RuntimeError(store.run(rw).message)
            rows, y, pred_base = _decisions(store, base, pos)
            rows_rw, _, pred_rw = _decisions(store, rw, pos)
            assert np.array_equal(rows, rows_rw)
            groups = sensitive_groups(ds, rows, args.column)
            arms = {
                "thresholds per group": rec["thresholds"]["change"],
                "re-weighting": bootstrap_gaps(y, pred_base, groups, pred_rw, seed=seed),
            }
            rates = {"plain": rates_by_group(y, pred_base, groups), "re-weighting": rates_by_group(y, pred_rw, groups)}
            rates["thresholds per group"] = rec["thresholds"]["after_by_group"]
            row = {"seed": seed, "seconds": time.perf_counter() - t0, "arms": arms, "rates": rates}
            out.append(row)
            for name, by_group in rates.items():
                print(
                    f"seed {seed} {name}: "
                    + " · ".join(
                        f"{g}: positive rate {r['selection_rate']:.3f}, TPR {r['tpr']:.3f}, FPR {r['fpr']:.4f}" for g, r in by_group.items()
                    )
                )
            for name, change in arms.items():
                print(
                    f"seed {seed} {name}: "
                    + " · ".join(
                        f"{k} {v['a']:.4f} → {v['b']:.4f} ({v['delta']:+.4f} [{v['low']:+.4f}, {v['high']:+.4f}])"
                        for k, v in change.items()
                    )
                )
        for name in ("thresholds per group", "re-weighting"):
            cuts = [r["arms"][name]["equalized_odds_difference"] for r in out]
            rel = [c["delta"] / c["a"] for c in cuts if c["a"] > 0]
            acc = [r["arms"][name]["accuracy"]["delta"] for r in out]
            print(
                f"{name}: equalized odds difference cut by "
                + ", ".join(f"{-x:.0%}" for x in rel)
                + "; accuracy change "
                + ", ".join(f"{a:+.4f}" for a in acc)
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    print(f"load at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
