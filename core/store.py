"""The store: SQLite (WAL) plus payload files under ``GAPSCOPE_HOME``. The single source of truth.

Layout::

    GAPSCOPE_HOME/
      gapscope.db                  datasets, dataset_versions, runs, metrics, predictions
      versions/<version id>/       one folder per dataset version, written once, never edited
        items.npy                  images, uint8 (n, H, W[, 3]) — memory-mapped on load
        items.parquet              texts (column "text") or tabular features
        rows.parquet               label, split and meta columns

Rules:

- A cleaning or a simulation makes a *new* version (``parent_id`` points back); nothing is
  edited in place, so undo is "pick the parent".
- A version's files are written into a temporary folder and renamed into place before its row
  is inserted, in that order; a failed import leaves no row and no folder behind.
- The schema has a version (``PRAGMA user_version``) and ordered migrations; opening an older
  database upgrades it in one transaction.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from core import paths
from core.data import Dataset

# Each entry upgrades the schema from version i to i + 1. Append, never edit a shipped entry.
MIGRATIONS: list[str] = [
    # 0 → 1: the foundation
    """
    CREATE TABLE datasets (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL,
        modality    TEXT NOT NULL CHECK (modality IN ('text', 'image', 'tabular')),
        source      TEXT NOT NULL,              -- 'demo:fashion-mnist', 'upload:reviews.csv', …
        created_at  REAL NOT NULL
    );
    CREATE UNIQUE INDEX datasets_demo ON datasets(source) WHERE source LIKE 'demo:%';
    CREATE TABLE dataset_versions (
        id           INTEGER PRIMARY KEY,
        dataset_id   INTEGER NOT NULL REFERENCES datasets(id),
        parent_id    INTEGER REFERENCES dataset_versions(id),
        kind         TEXT NOT NULL,             -- import | clean | simulate
        note         TEXT NOT NULL DEFAULT '',
        params       TEXT NOT NULL DEFAULT '{}',  -- JSON: what made this version
        n_items      INTEGER NOT NULL,
        class_names  TEXT NOT NULL,             -- JSON list
        folder       TEXT NOT NULL,             -- relative to GAPSCOPE_HOME
        warnings     TEXT NOT NULL DEFAULT '[]',  -- JSON list of load warnings
        skipped      TEXT NOT NULL DEFAULT '[]',  -- JSON list of [item, reason]
        created_at   REAL NOT NULL
    );
    CREATE INDEX dataset_versions_dataset ON dataset_versions(dataset_id);
    CREATE TABLE runs (
        id            INTEGER PRIMARY KEY,
        version_id    INTEGER NOT NULL REFERENCES dataset_versions(id),
        name          TEXT NOT NULL DEFAULT '',
        status        TEXT NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'running', 'stopping', 'stopped', 'finished', 'failed')),
        config        TEXT NOT NULL,            -- JSON of the RunConfig dataclass
        progress      REAL NOT NULL DEFAULT 0,  -- 0..1
        message       TEXT NOT NULL DEFAULT '',
        pid           INTEGER,
        pid_started   REAL,                     -- process start time, to tell a reused pid apart
        heartbeat_at  REAL,
        stop_requested INTEGER NOT NULL DEFAULT 0,
        created_at    REAL NOT NULL,
        started_at    REAL,
        finished_at   REAL
    );
    CREATE TABLE metrics (
        run_id     INTEGER NOT NULL REFERENCES runs(id),
        step       INTEGER NOT NULL,
        epoch      REAL,
        split      TEXT NOT NULL,               -- train | val | test
        name       TEXT NOT NULL,
        value      REAL,
        created_at REAL NOT NULL
    );
    CREATE INDEX metrics_run ON metrics(run_id, name, step);
    CREATE TABLE predictions (
        run_id     INTEGER NOT NULL REFERENCES runs(id),
        step       INTEGER NOT NULL,
        split      TEXT NOT NULL,
        item       INTEGER NOT NULL,            -- row index in the dataset version
        label      INTEGER NOT NULL,
        pred       INTEGER NOT NULL,
        conf       REAL NOT NULL,
        PRIMARY KEY (run_id, step, split, item)
    ) WITHOUT ROWID;
    """,
    # 1 → 2: background runs (core.jobs): when a stop was asked, how the worker ended, which GPU
    """
    ALTER TABLE runs ADD COLUMN stop_requested_at REAL;
    ALTER TABLE runs ADD COLUMN exit_code INTEGER;
    ALTER TABLE runs ADD COLUMN gpu INTEGER;
    CREATE INDEX runs_status ON runs(status);
    """,
    # 2 → 3: undoing a cleaning archives its version (hidden from pickers; files and rows kept)
    """
    ALTER TABLE dataset_versions ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class VersionInfo:
    id: int
    dataset_id: int
    dataset_name: str
    modality: str
    source: str
    parent_id: int | None
    kind: str
    note: str
    params: dict
    n_items: int
    class_names: list[str]
    folder: str
    warnings: list[str]
    skipped: list[tuple[str, str]]
    created_at: float
    archived: bool = False

    @property
    def label(self) -> str:
        """What a picker shows: 'Fashion-MNIST · v3 (clean: dropped 120)'."""
        tail = f" ({self.kind}: {self.note})" if self.kind != "import" and self.note else ""
        return f"{self.dataset_name} · v{self.id}{tail}"


class Store:
    """SQLite + files. Cheap to create; each method opens its own short connection so that the
    app, its worker processes and tests can share one home safely."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = Path(home) if home is not None else paths.home()
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "versions").mkdir(exist_ok=True)
        self.db_path = self.home / "gapscope.db"
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            self._migrate(con)

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA busy_timeout=30000")
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _migrate(self, con: sqlite3.Connection) -> None:
        current = con.execute("PRAGMA user_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.db_path} has schema version {current}, newer than this Gapscope ({SCHEMA_VERSION}). "
                "Upgrade Gapscope, or point GAPSCOPE_HOME at another folder."
            )
        if current == SCHEMA_VERSION:
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            current = con.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            for version in range(current, SCHEMA_VERSION):
                for statement in _split_sql(MIGRATIONS[version]):
                    con.execute(statement)
                con.execute(f"PRAGMA user_version = {version + 1}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        with self._connect() as con:
            return con.execute("PRAGMA user_version").fetchone()[0]

    # ------------------------------------------------------------------ datasets
    def find_dataset(self, source: str) -> int | None:
        with self._connect() as con:
            row = con.execute("SELECT id FROM datasets WHERE source = ?", (source,)).fetchone()
        return None if row is None else int(row["id"])

    def save_dataset(
        self,
        dataset: Dataset,
        *,
        source: str,
        dataset_id: int | None = None,
        parent_id: int | None = None,
        kind: str = "import",
        note: str = "",
        params: dict | None = None,
        warnings: Iterable[str] = (),
        skipped: Iterable[tuple[str, str]] = (),
    ) -> int:
        """Write ``dataset`` as a new version and return its id.

        With ``dataset_id=None`` a new dataset row is made too (an import); otherwise the version is
        added to that dataset (a cleaning or simulation, with ``parent_id``).
        """
        folder = f"versions/{uuid.uuid4().hex}"
        tmp = self.home / f"{folder}.tmp"
        tmp.mkdir(parents=True)
        try:
            _write_payload(dataset, tmp)
            tmp.rename(self.home / folder)
            now = time.time()
            with self._tx() as con:
                if dataset_id is None:
                    dataset_id = con.execute(
                        "INSERT INTO datasets (name, modality, source, created_at) VALUES (?, ?, ?, ?)",
                        (dataset.name, dataset.modality, source, now),
                    ).lastrowid
                vid = con.execute(
                    "INSERT INTO dataset_versions (dataset_id, parent_id, kind, note, params, n_items, class_names,"
                    " folder, warnings, skipped, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        dataset_id, parent_id, kind, note, json.dumps(params or {}, default=str), len(dataset),
                        json.dumps(list(map(str, dataset.class_names))), folder,
                        json.dumps(list(warnings)), json.dumps([list(s) for s in skipped]), now,
                    ),
                ).lastrowid
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(self.home / folder, ignore_errors=True)
            raise
        return int(vid)

    def versions(self, dataset_id: int | None = None, *, include_archived: bool = False) -> list[VersionInfo]:
        sql = (
            "SELECT v.*, d.name AS dataset_name, d.modality, d.source FROM dataset_versions v "
            "JOIN datasets d ON d.id = v.dataset_id WHERE (v.archived = 0 OR ?)"
        )
        args: tuple = (int(include_archived),)
        if dataset_id is not None:
            sql += " AND v.dataset_id = ?"
            args += (dataset_id,)
        with self._connect() as con:
            rows = con.execute(sql + " ORDER BY v.id", args).fetchall()
        return [_version_info(r) for r in rows]

    def version(self, version_id: int) -> VersionInfo:
        with self._connect() as con:
            row = con.execute(
                "SELECT v.*, d.name AS dataset_name, d.modality, d.source FROM dataset_versions v "
                "JOIN datasets d ON d.id = v.dataset_id WHERE v.id = ?",
                (version_id,),
            ).fetchone()
        if row is None:
            raise KeyError(f"dataset version {version_id} does not exist")
        return _version_info(row)

    def set_archived(self, version_id: int, archived: bool = True) -> None:
        """Hide (or show again) a version in pickers; its files and rows stay."""
        self.version(version_id)  # KeyError if missing
        with self._tx() as con:
            con.execute("UPDATE dataset_versions SET archived = ? WHERE id = ?", (int(archived), version_id))

    def latest_versions(self) -> list[VersionInfo]:
        """The newest version of each dataset, newest dataset first."""
        newest: dict[int, VersionInfo] = {}
        for v in self.versions():
            newest[v.dataset_id] = v
        return sorted(newest.values(), key=lambda v: -v.dataset_id)

    def load_dataset(self, version_id: int) -> Dataset:
        info = self.version(version_id)
        folder = self.home / info.folder
        rows = pd.read_parquet(folder / "rows.parquet")
        if info.modality == "image":
            items = np.load(folder / "items.npy", mmap_mode="r")
        else:
            items = pd.read_parquet(folder / "items.parquet")
            if info.modality == "text":
                items = items["text"].to_numpy(dtype=object)
        meta = rows.drop(columns=["label", "split"])
        return Dataset(
            name=info.dataset_name, modality=info.modality, items=items,
            labels=rows["label"].to_numpy(np.int64), class_names=info.class_names,
            split=rows["split"].to_numpy(np.int8), meta=meta,
        )

    # ------------------------------------------------------------------ runs
    def create_run(self, version_id: int, config: dict[str, Any], *, name: str = "") -> int:
        self.version(version_id)  # KeyError if missing
        with self._tx() as con:
            return int(con.execute(
                "INSERT INTO runs (version_id, name, config, created_at) VALUES (?, ?, ?, ?)",
                (version_id, name, json.dumps(config, default=str), time.time()),
            ).lastrowid)

    _RUN_FIELDS = {"status", "progress", "message", "pid", "pid_started", "heartbeat_at",
                   "stop_requested", "started_at", "finished_at", "name"}

    def update_run(self, run_id: int, **fields: Any) -> None:
        bad = set(fields) - self._RUN_FIELDS
        if bad:
            raise ValueError(f"unknown run fields {sorted(bad)}; allowed: {sorted(self._RUN_FIELDS)}")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as con:
            con.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))

    def runs(self, *, status: Iterable[str] | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM runs", ()
        if status is not None:
            status = tuple(status)
            sql += f" WHERE status IN ({', '.join('?' * len(status))})"
            args = status
        with self._connect() as con:
            rows = con.execute(sql + " ORDER BY id DESC", args).fetchall()
        return [dict(r, config=json.loads(r["config"])) for r in rows]

    def run(self, run_id: int) -> dict[str, Any]:
        with self._connect() as con:
            row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"run {run_id} does not exist")
        return dict(row, config=json.loads(row["config"]))

    def run_counts(self) -> dict[str, int]:
        with self._connect() as con:
            rows = con.execute("SELECT status, COUNT(*) AS n FROM runs GROUP BY status").fetchall()
        return {r["status"]: int(r["n"]) for r in rows}

    # ------------------------------------------------------------------ metrics & predictions
    def add_metrics(self, run_id: int, step: int, split: str, values: dict[str, float], *, epoch: float | None = None) -> None:
        now = time.time()
        with self._tx() as con:
            con.executemany(
                "INSERT INTO metrics (run_id, step, epoch, split, name, value, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, step, epoch, split, k, _finite_or_none(v), now) for k, v in values.items()],
            )

    def metrics(self, run_id: int, *, since_step: int = -1) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query(
                "SELECT step, epoch, split, name, value, created_at FROM metrics WHERE run_id = ? AND step > ? "
                "ORDER BY step, split, name",
                con, params=(run_id, since_step),
            )

    def add_predictions(
        self, run_id: int, step: int, split: str, items: np.ndarray, labels: np.ndarray, pred: np.ndarray, conf: np.ndarray
    ) -> None:
        rows = zip(
            np.asarray(items, np.int64).tolist(), np.asarray(labels, np.int64).tolist(),
            np.asarray(pred, np.int64).tolist(), np.asarray(conf, np.float64).tolist(),
        )
        with self._tx() as con:
            con.executemany(
                "INSERT OR REPLACE INTO predictions (run_id, step, split, item, label, pred, conf) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, step, split, *r) for r in rows],
            )

    def predictions(self, run_id: int, *, split: str = "test", step: int | None = None) -> pd.DataFrame:
        with self._connect() as con:
            if step is None:
                row = con.execute(
                    "SELECT MAX(step) FROM predictions WHERE run_id = ? AND split = ?", (run_id, split)
                ).fetchone()
                step = row[0]
            if step is None:
                return pd.DataFrame(columns=["item", "label", "pred", "conf"])
            return pd.read_sql_query(
                "SELECT item, label, pred, conf FROM predictions WHERE run_id = ? AND split = ? AND step = ? ORDER BY item",
                con, params=(run_id, split, step),
            )

    # ------------------------------------------------------------------ run lifecycle (core.jobs, core.train)
    # Status moves: queued → running → finished | failed | stopping → stopped. Only the move out of
    # a live status (queued / running / stopping) is ever made, so a worker's own final word is
    # never overwritten by a runner that noticed its exit a moment later, nor the other way round.
    LIVE_STATUSES = ("queued", "running", "stopping")
    _LIFECYCLE_FIELDS = _RUN_FIELDS | {"stop_requested_at", "exit_code", "gpu"}

    def set_run_status(self, run_id: int, status: str | None, *, only_if: Iterable[str] | None = None, **fields: Any) -> bool:
        """Set ``status`` (None: keep it) and ``fields`` if the current status is in ``only_if``;
        return whether the row changed. One transaction: a compare-and-set."""
        bad = set(fields) - self._LIFECYCLE_FIELDS
        if bad:
            raise ValueError(f"unknown run fields {sorted(bad)}; allowed: {sorted(self._LIFECYCLE_FIELDS)}")
        if status is not None:
            fields = {"status": status, **fields}
        if not fields:
            return False
        sql = f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?"
        args: tuple = (*fields.values(), run_id)
        if only_if is not None:
            only_if = tuple(only_if)
            sql += f" AND status IN ({', '.join('?' * len(only_if))})"
            args += only_if
        with self._tx() as con:
            return con.execute(sql, args).rowcount > 0

    def claim_next_run(self, max_running: int) -> dict[str, Any] | None:
        """Move the oldest queued run to "running" if fewer than ``max_running`` runs are live;
        return its row (None if nothing to start). Atomic, so two app processes sharing a home
        never start the same run twice."""
        with self._connect() as con:  # the common case, nothing queued, needs no write lock
            if con.execute("SELECT 1 FROM runs WHERE status = 'queued' LIMIT 1").fetchone() is None:
                return None
        with self._tx() as con:
            busy = con.execute("SELECT COUNT(*) FROM runs WHERE status IN ('running', 'stopping')").fetchone()[0]
            if busy >= max_running:
                return None
            row = con.execute("SELECT id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            now = time.time()
            con.execute(
                "UPDATE runs SET status = 'running', started_at = ?, heartbeat_at = ?, message = 'starting' WHERE id = ?",
                (now, now, row["id"]),
            )
            run_id = int(row["id"])
        return self.run(run_id)

    def request_stop(self, run_id: int) -> str:
        """Ask a run to stop; return its status afterwards.

        A queued run becomes "stopped" at once; a running one becomes "stopping" and its worker
        stops after the step it is in (it polls ``stop_requested``). Finished runs are left alone.
        """
        now = time.time()
        with self._tx() as con:
            row = con.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(f"run {run_id} does not exist")
            status = row["status"]
            if status == "queued":
                con.execute(
                    "UPDATE runs SET status = 'stopped', stop_requested = 1, stop_requested_at = ?, finished_at = ?,"
                    " message = 'stopped before it started' WHERE id = ?", (now, now, run_id))
                return "stopped"
            if status == "running":
                con.execute(
                    "UPDATE runs SET status = 'stopping', stop_requested = 1, stop_requested_at = ? WHERE id = ?",
                    (now, run_id))
                return "stopping"
            return status

    def stop_requested(self, run_id: int) -> bool:
        with self._connect() as con:
            row = con.execute("SELECT stop_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["stop_requested"])

    def heartbeat(self, run_id: int) -> bool:
        """Record that the worker of ``run_id`` is alive; return whether a stop was asked for
        (one short transaction: the worker's watchdog thread calls it every few seconds)."""
        with self._tx() as con:
            con.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time(), run_id))
            row = con.execute("SELECT stop_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["stop_requested"])


# ---------------------------------------------------------------------- helpers


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip() and not all(
        line.strip().startswith("--") or not line.strip() for line in s.strip().splitlines()
    )]


def _finite_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _version_info(r: sqlite3.Row) -> VersionInfo:
    return VersionInfo(
        id=int(r["id"]), dataset_id=int(r["dataset_id"]), dataset_name=r["dataset_name"], modality=r["modality"],
        source=r["source"], parent_id=r["parent_id"], kind=r["kind"], note=r["note"], params=json.loads(r["params"]),
        n_items=int(r["n_items"]), class_names=json.loads(r["class_names"]), folder=r["folder"],
        warnings=json.loads(r["warnings"]), skipped=[tuple(s) for s in json.loads(r["skipped"])],
        created_at=float(r["created_at"]), archived=bool(r["archived"]),
    )


def _write_payload(ds: Dataset, folder: Path) -> None:
    if ds.modality == "image":
        np.save(folder / "items.npy", np.ascontiguousarray(ds.items, dtype=np.uint8))
    elif ds.modality == "text":
        pd.DataFrame({"text": pd.Series(ds.items, dtype="string")}).to_parquet(folder / "items.parquet", index=False)
    else:
        ds.items.reset_index(drop=True).to_parquet(folder / "items.parquet", index=False)
    reserved = {"label", "split"} & set(ds.meta.columns)
    if reserved:
        raise ValueError(f"meta columns {sorted(reserved)} clash with reserved names; rename them")
    rows = pd.concat(
        [pd.DataFrame({"label": ds.labels.astype(np.int32), "split": ds.split.astype(np.int8)}), ds.meta.reset_index(drop=True)],
        axis=1,
    )
    rows.to_parquet(folder / "rows.parquet", index=False)
