"""Lab runs against a reference, per exposure count, with paired intervals.

For each compared lab run and each exposure count, the change in accuracy and hallucination @τ on
the questions both runs were asked about people seen that many times (0: held out), with
``core.compare.intervals.paired_bootstrap``'s paired 95 % interval and verdict — so "paraphrase
augmentation lifts facts seen once by +0.35 [+0.29, +0.41]" is read with its uncertainty.
Torch-free.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.compare.intervals import Answers, answers, paired_bootstrap
from core.data.dataset import Dataset
from core.metrics.results import RunResults

METRICS = ("accuracy", "hallucination_rate")


def _by_exposure(a: Answers, exposure_of: dict[int, int]) -> dict[int, Answers]:
    ex = np.array([exposure_of.get(int(k), -1) for k in a.keys])
    return {int(e): Answers(a.probs[ex == e], a.y[ex == e], a.keys[ex == e]) for e in np.unique(ex) if e >= 0}


def exposure_deltas(results: list[RunResults], datasets: list[Dataset], *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per compared run (all but the first) and exposure count: ``run``, ``exposure``, ``n``
    (shared questions) and, per metric, the reference's value, the run's, the change and its
    interval (``<metric>_low`` / ``_high``) and the verdict. Empty without two lab runs on one corpus."""
    labs = [(r, ds) for r, ds in zip(results, datasets) if r.is_lab and "exposure" in ds.meta]
    if len(labs) < 2:
        return pd.DataFrame()
    (ref, ds_ref), rows = labs[0], []
    exposure_of = dict(zip(ds_ref.item_ids().tolist(), ds_ref.meta["exposure"].astype(int).tolist()))
    base = answers(ref, ds_ref)
    if base is None:
        return pd.DataFrame()
    base_parts = _by_exposure(base, exposure_of)
    for res, ds in labs[1:]:
        other = answers(res, ds)
        if other is None:
            continue
        for e, part in sorted(_by_exposure(other, exposure_of).items()):
            if e not in base_parts:
                continue
            ivs = paired_bootstrap(base_parts[e], part, tau=ref.tau, metrics=METRICS, n_boot=n_boot, seed=seed)
            row: dict[str, object] = {"run": res.run_id, "exposure": e, "n": int(np.intersect1d(base_parts[e].keys, part.keys).size)}
            for m in METRICS:
                iv = ivs.get(m)
                if iv is not None:
                    row.update({f"{m}_ref": iv.a, f"{m}_run": iv.b, f"{m}_delta": iv.delta, f"{m}_low": iv.low, f"{m}_high": iv.high,
                                f"{m}_verdict": iv.verdict})  # fmt: skip
            rows.append(row)
    return pd.DataFrame(rows)


def delta_words(table: pd.DataFrame, labels: dict[int, str]) -> pd.DataFrame:
    """``exposure_deltas`` as a page shows it: run, seen (×), questions, "Δ accuracy [low, high]",
    "Δ hallucination [low, high]", verdicts."""
    if table.empty:
        return table
    out = pd.DataFrame({"run": [labels.get(int(r), f"#{r}") for r in table["run"]], "seen (×)": table["exposure"], "questions": table["n"]})
    for m, word in (("accuracy", "accuracy"), ("hallucination_rate", "hallucination @τ")):
        if f"{m}_delta" in table:
            out[f"{word}: reference → run"] = [f"{a:.3f} → {b:.3f}" for a, b in zip(table[f"{m}_ref"], table[f"{m}_run"])]
            out[f"Δ {word} [95 %]"] = [
                f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]" for d, lo, hi in zip(table[f"{m}_delta"], table[f"{m}_low"], table[f"{m}_high"])
            ]
            out[f"{word}: verdict"] = table[f"{m}_verdict"]
    return out
