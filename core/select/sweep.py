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

__all__ = ["SWEEP_METRICS", "make_sweep", "selection_records", "summary_words", "sweep_configs", "sweep_summary", "sweep_table"]

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


def selection_records(store: Store, run_ids: Sequence[int]) -> tuple[pd.DataFrame, dict[int, pd.DataFrame]]:
    """What Compare and the report show of selection for ``run_ids``: (one row per run on a kept
    version — run, version, how it was kept, train items —, and per version whose keep-x % sweep
    touches these runs — a run's own version, or the version its kept version came from — that
    sweep's ``sweep_summary``)."""
    rows, parents = [], set()
    for run_id in run_ids:
        vid = int(store.run(int(run_id)).version_id)
        info = store.version(vid)
        recipe = info.params.get("keep")
        if recipe is None:
            parents.add(vid)
            continue
        if info.parent_id is not None:
            parents.add(int(info.parent_id))
        rows.append(
            {
                "run": int(run_id),
                "version": vid,
                "kept": f"{float(recipe['fraction']):.0%} by {recipe['score']}"
                + (" (equal per class)" if recipe.get("balance") == "equal" else ""),
                "scored by run": recipe.get("run_id"),
                "seed": recipe.get("seed", 0),
                "note": info.note,
            }
        )
    sweeps = {}
    for vid in sorted(parents):
        summary = sweep_summary(sweep_table(store, vid))
        if not summary.empty:
            sweeps[vid] = summary
    return pd.DataFrame(rows, columns=["run", "version", "kept", "scored by run", "seed", "note"]), sweeps


def summary_words(summary: pd.DataFrame) -> pd.DataFrame:
    """``sweep_summary`` as a table to read: score, share kept, runs, macro-F1 [95 %], vs random,
    hallucination, ECE."""

    def interval(r: pd.Series) -> str:
        if r["runs"] < 2:
            return f"{r['macro_f1']:.3f}"
        return f"{r['macro_f1']:.3f} [{r['macro_f1_low']:.3f}, {r['macro_f1_high']:.3f}]"

    return pd.DataFrame(
        {
            "score": summary["score"],
            "share kept": summary["fraction"].map(lambda f: f"{f:.0%}"),
            "runs": summary["runs"],
            "macro-F1 [95 %]": summary.apply(interval, axis=1),
            "vs random": summary["macro_f1_vs_random"].map(lambda v: f"{v:+.3f}" if np.isfinite(v) else "—"),
            "hallucination": summary["hallucination_rate"].map(lambda v: f"{v:.3f}"),
            "ECE": summary["ece"].map(lambda v: f"{v:.3f}"),
        }
    )
