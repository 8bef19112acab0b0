"""Shift results kept for Compare and the report: one JSON file per result under ``GAPSCOPE_HOME/shift``.

A record holds the pair in words, the version, each test's statistic, p-value, sizes, time and
verdict, and — when a run was estimated on the target — that run's estimates and the truth beside
them. Compare shows the records of the runs it compares; the report adds a Shift section for them.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from core.atomic import atomic_write_json
from core.jsonable import to_jsonable
from core.shift.estimate import TargetEstimate
from core.shift.target import Drift

FOLDER = "shift"


def _folder(home: str | Path) -> Path:
    return Path(home) / FOLDER


def keep(
    home: str | Path, *, version_id: int, words: str, drift: Drift | None = None, run_id: int | None = None,
    estimate: TargetEstimate | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Write one record and return it."""
    record: dict[str, Any] = {"id": uuid.uuid4().hex[:12], "created_at": time.time(), "version_id": int(version_id), "words": words}
    if drift is not None:
        record["tests"] = {
            name: {"statistic": t.statistic, "p_value": t.p_value, "n_reference": t.n_reference, "n_target": t.n_target,
                   "seconds": t.seconds, "alpha": t.alpha, "shifted": t.shifted}
            for name, t in drift.tests.items()
        }  # fmt: skip
        record["embedding"] = drift.embedding
        if drift.features is not None:
            record["columns_shifted"] = drift.features.table.loc[drift.features.table["shifted"], "column"].astype(str).tolist()
    if estimate is not None and run_id is not None:
        record["run_id"] = int(run_id)
        record["estimate"] = {
            "accuracy": estimate.accuracy, "hallucination": estimate.hallucination, "truth": estimate.truth, "tau": estimate.tau,
            "n_target": estimate.n_target, "bbse_target_prior": estimate.label_shift.target_prior,
        }  # fmt: skip
    atomic_write_json(_folder(home) / f"{int(record['created_at'] * 1000)}-{record['id']}.json", to_jsonable(record))
    return record


def kept(home: str | Path) -> list[dict[str, Any]]:
    """Every record, newest first (a damaged file is skipped)."""
    out = []
    for path in sorted(_folder(home).glob("*.json"), reverse=True):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return out


def run_table(home: str | Path, run_ids: list[int]) -> pd.DataFrame:
    """One row per kept estimate of one of ``run_ids``: the target, whether it was found shifted,
    the estimated accuracy (ATC) and hallucination rate, and the true ones where known."""
    rows = []
    for r in kept(home):
        est = r.get("estimate")
        if est is None or r.get("run_id") not in run_ids:
            continue
        tests = r.get("tests", {})
        truth = est.get("truth", {})
        rows.append(
            {
                "run": r["run_id"],
                "target": r["words"],
                "shifted": "—" if not tests else ("yes" if any(t["shifted"] for t in tests.values()) else "no"),
                "accuracy (ATC)": est["accuracy"]["atc_negent"],
                "accuracy (true)": truth.get("accuracy", float("nan")),
                f"hallucination @{est['tau']:g} (est.)": est["hallucination"]["atc"],
                f"hallucination @{est['tau']:g} (true)": truth.get("hallucination_rate", float("nan")),
            }
        )
    return pd.DataFrame(rows)


def version_tests(home: str | Path, version_ids: list[int]) -> list[dict[str, Any]]:
    """Kept drift tests on ``version_ids``, newest first."""
    return [r for r in kept(home) if "tests" in r and r.get("version_id") in version_ids]
