"""Runs as files: every metric row (CSV, Parquet) and every run's config (JSON).

Per-class metrics carry the class's name (``recall/sneaker``; the index is added only where two
classes share a name, ``recall/cat (2)``), every other metric its stored name (``core.metrics.keys``).
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import pandas as pd

from core.metrics.names import class_labels, export_name

if TYPE_CHECKING:
    from core.store.database import Store


def metrics_frame(store: Store, run_ids: list[int]) -> pd.DataFrame:
    """One row per metric value: run_id, run name, step, epoch, split, name (per-class metrics
    with the class's name), value."""
    frames = []
    for run_id in run_ids:
        row, metrics = store.run_with_metrics(run_id)
        labels = class_labels(store.version(row.version_id).class_names)
        names = {key: export_name(key, labels) for key in metrics["name"].unique()}
        frames.append(metrics.drop(columns=["created_at"]).assign(run_id=run_id, run=row.name, name=metrics["name"].map(names)))
    cols = ["run_id", "run", "step", "epoch", "split", "name", "value"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def metrics_csv(store: Store, run_ids: list[int]) -> bytes:
    return metrics_frame(store, run_ids).to_csv(index=False).encode()


def metrics_parquet(store: Store, run_ids: list[int]) -> bytes:
    buf = io.BytesIO()
    metrics_frame(store, run_ids).to_parquet(buf, index=False)
    return buf.getvalue()


def configs_json(store: Store, run_ids: list[int]) -> bytes:
    """``{run id: {name, status, version, config}}`` as indented JSON."""
    out = {}
    for run_id in run_ids:
        row = store.run(run_id)
        out[str(run_id)] = {"name": row.name, "status": str(row.status), "version_id": row.version_id, "config": row.config}
    return json.dumps(out, indent=2).encode()
