"""A keep-x % sweep: one short run per (score, share kept), read back as a table and a chart.

``make_sweep`` saves a kept version (``core.select.keep``) per score and share — random at every
share, so each score has its baseline beside it — and ``sweep_configs`` gives each the scoring
run's settings with fewer epochs if asked. The sweep keeps no record of its own: ``sweep_table``
finds the kept versions of a version by their stored recipe and reads their runs' results (test, at
each run's result: macro-F1, hallucination rate @τ, ECE), so a sweep survives a restart and runs
started by hand on a kept version join it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.errors import DataError
from core.select.keep import KeepRecipe, kept_version

if TYPE_CHECKING:
    from core.store import Store
    from core.train.config import RunConfig

__all__ = ["SWEEP_METRICS", "make_sweep", "sweep_configs", "sweep_summary", "sweep_table"]

SWEEP_METRICS = {"macro_f1": "macro-F1", "hallucination_rate": "hallucination rate @τ", "ece": "ECE"}


def make_sweep(
    store: Store, version_id: int, run_id: int, scores: Sequence[str], fractions: Sequence[float], *, seeds: Sequence[int] = (0,),
    balance: str = "proportional",
) -> list[int]:  # fmt: skip
    """Kept versions of ``version_id`` for every score (and random) × share × seed; returns their ids."""
    if not fractions:
        raise DataError("pick at least one share to keep.")
    ids = []
    for seed in seeds:
        for fraction in fractions:
            for score in dict.fromkeys(["random", *scores]):
                recipe = KeepRecipe(score, float(fraction), balance, seed=int(seed), run_id=None if score == "random" else int(run_id))
                ids.append(kept_version(store, version_id, recipe))
    return ids


def sweep_configs(store: Store, run_id: int, version_ids: Sequence[int], *, epochs: int | None = None) -> list[RunConfig]:
    """The scoring run's settings on each kept version (``epochs`` overrides its epochs)."""
    from core.train.config import RunConfig

    base = RunConfig.from_dict(store.run(run_id).config)
    out = []
    for vid in version_ids:
        recipe = store.version(vid).params.get("keep", {})
        name = f"keep {float(recipe.get('fraction', 1)):.0%} {recipe.get('score', '?')} s{recipe.get('seed', 0)}"
        changes: dict = {"version_id": int(vid), "name": name}
        if epochs:
            changes["epochs"] = int(epochs)
        out.append(dataclasses.replace(base, **changes))
    return out


def sweep_table(store: Store, version_id: int) -> pd.DataFrame:
    """One row per run on a kept version of ``version_id``: version, score, fraction, balance, seed,
    run, status, train items and the SWEEP_METRICS on test at the run's result (NaN until finished)."""
    from core.metrics.results import RunResults
    from core.store.rows import RunStatus

    kept = {v.id: v for v in store.versions(include_archived=True) if v.parent_id == version_id and "keep" in v.params}
    rows = []
    for run in store.runs():
        info = kept.get(run.version_id)
        if info is None:
            continue
        recipe = info.params["keep"]
        row = {
            "version": info.id,
            "score": recipe["score"],
            "fraction": float(recipe["fraction"]),
            "balance": recipe.get("balance", "proportional"),
            "seed": int(recipe.get("seed", 0)),
            "run": run.id,
            "status": str(run.status),
        }
        values = {}
        if run.status == RunStatus.FINISHED:
            res = RunResults(store, run.id)
            values = res.values("test", res.result_step) if res.result_step is not None else {}
        for m in SWEEP_METRICS:
            v = values.get(m)
            row[m] = float(v) if v is not None else np.nan
        rows.append(row)
    cols = ["version", "score", "fraction", "balance", "seed", "run", "status", *SWEEP_METRICS]
    return pd.DataFrame(rows, columns=cols).sort_values(["fraction", "score", "seed", "run"]).reset_index(drop=True)


def sweep_summary(table: pd.DataFrame, *, z: float = 1.96) -> pd.DataFrame:
    """Per score and share kept: finished runs, and per metric the mean, sd and a normal 95 % interval
    of the mean over seeds (``<m>``, ``<m>_sd``, ``<m>_low``, ``<m>_high``); the gap to random at the
    same share (``<m>_vs_random``)."""
    done = table.dropna(subset=["macro_f1"])
    if done.empty:
        return pd.DataFrame(columns=["score", "fraction", "runs"])
    g = done.groupby(["score", "fraction"])
    out = g.size().rename("runs").to_frame()
    for m in SWEEP_METRICS:
        mean, sd = g[m].mean(), g[m].std(ddof=1).fillna(0.0)
        half = z * sd / np.sqrt(out["runs"])
        out[m], out[f"{m}_sd"], out[f"{m}_low"], out[f"{m}_high"] = mean, sd, mean - half, mean + half
    out = out.reset_index()
    base = out[out["score"] == "random"].set_index("fraction")
    for m in SWEEP_METRICS:
        out[f"{m}_vs_random"] = out[m] - out["fraction"].map(base[m]) if not base.empty else np.nan
    return out
