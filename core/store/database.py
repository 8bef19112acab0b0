"""The store: SQLite (WAL) plus payload files under ``GAPSCOPE_HOME``. The single source of truth.

Layout::

    GAPSCOPE_HOME/
      gapscope.db                  datasets, dataset_versions, runs, metrics, predictions
      versions/<version id>/       one folder per dataset version, written once, never edited
        items.npy, items.parquet   the items (core.store.payload)
        rows.parquet               label, split and meta columns
      runs/<run id>/               a run's files (core.store.artifacts)

Rules:

- A cleaning or a simulation makes a *new* version (``parent_id`` points back); nothing is
  edited in place, so undo is "pick the parent".
- A version's files are written into a temporary folder and renamed into place before its row
  is inserted, in that order; a failed import leaves no row and no folder behind.
- The schema has a version (``PRAGMA user_version``) and ordered migrations; opening an older
  database upgrades it in one transaction.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import numpy as np
import pandas as pd

from core import paths
from core.data.dataset import Dataset
from core.errors import DataError
from core.jsonable import finite_or_none, to_jsonable
from core.store.payload import read_payload, write_payload
from core.store.rows import RunRow
from core.store.schema import SCHEMA_VERSION, migrate
from core.store.space import (
    DiskFull,
    StoreReadOnly,
    check_space,
    disk_full_message,
    ensure_reserve,
    is_disk_full,
    is_locked,
    release_reserve,
    writable,
)
from core.store.status import WORKING, RunStatus

T = TypeVar("T")


class StoreBusy(DataError):
    """Another process held the store's write lock for longer than the busy timeout."""


class _Connection(sqlite3.Connection):
    immutable = False  # opened read-only without SQLite's shared memory (read-only home, full disk)


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
        """What a picker shows: 'Fashion-MNIST · v3 (clean: dropped 120)', 'Digits · v4 (simulated:
        long tail ×10 (seed 0))'. A note that already starts with its kind's word is not prefixed again."""
        word = {"simulate": "simulated"}.get(self.kind, self.kind)
        note = self.note if self.note.startswith(f"{word}: ") else f"{word}: {self.note}"
        tail = f" ({note})" if self.kind != "import" and self.note else ""
        return f"{self.dataset_name} · v{self.id}{tail}"


class Store:
    """SQLite + files. Cheap to create; each method opens its own short connection so that the
    app, its worker processes and tests can share one home safely."""

    def __init__(self, home: str | Path | None = None, *, busy_timeout_s: float | None = None) -> None:
        self.home = Path(home) if home is not None else paths.home()
        self.db_path = self.home / "gapscope.db"
        if busy_timeout_s is None:
            busy_timeout_s = float(os.environ.get("GAPSCOPE_BUSY_TIMEOUT_S", "30"))
        self.busy_timeout_s = busy_timeout_s
        #: None, or why the home cannot be written (then every read works and every write raises
        #: ``StoreReadOnly`` saying so).
        self.read_only: str | None = None
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            if not self.home.is_dir():
                raise StoreReadOnly(
                    f"Gapscope cannot create its home {self.home}: {err.strerror or err}. Point GAPSCOPE_HOME at a folder you can write."
                ) from err
        self.read_only = writable(self.home)
        if self.read_only is not None:
            if not self.db_path.exists():
                raise StoreReadOnly(
                    f"{self.home} cannot be written ({self.read_only}) and holds no Gapscope store yet. "
                    "Point GAPSCOPE_HOME at a folder you can write."
                )
            with self._connect() as con:
                version = con.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise StoreReadOnly(
                    f"The store in {self.home} has schema version {version} and this Gapscope reads {SCHEMA_VERSION}; "
                    f"upgrading it needs write access, which that folder does not give ({self.read_only})."
                )
            return
        with contextlib.suppress(OSError):  # a full disk: the folder comes with the first import
            (self.home / "versions").mkdir(exist_ok=True)
        ensure_reserve(self.home)
        with self._connect() as con:
            if con.immutable:  # the disk is full: browse what is there
                return
            if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                con.execute("PRAGMA journal_mode=WAL")
            migrate(con, self.db_path)

    # ------------------------------------------------------------------ plumbing
    def _open(self, *, immutable: bool = False) -> _Connection:
        if immutable or self.read_only is not None:
            # no shared-memory file needed (the folder cannot take one): a plain read of the file
            uri = f"file:{quote(str(self.db_path))}?mode=ro&immutable=1"
            con = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout_s, isolation_level=None, factory=_Connection)
            con.immutable = True
        else:
            con = sqlite3.connect(self.db_path, timeout=self.busy_timeout_s, isolation_level=None, factory=_Connection)
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA foreign_keys=ON")
            con.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            if not con.immutable:
                con.execute(f"PRAGMA journal_size_limit={4 * 2**20}")  # the WAL shrinks back after checkpoints
                con.execute("SELECT 1 FROM sqlite_master LIMIT 1")  # opens SQLite's shared memory (32 KiB) now
        except BaseException:
            con.close()
            raise
        return con

    @contextmanager
    def _connect(self) -> Iterator[_Connection]:
        try:
            con = self._open()
        except sqlite3.OperationalError as err:
            if not is_disk_full(err, self.home):
                raise
            # the disk is full: give back the reserve (SQLite needs 32 KiB to read) and try again;
            # failing that, read the database file as it stands
            retry: _Connection | None = None
            if release_reserve(self.home):
                with contextlib.suppress(sqlite3.OperationalError):
                    retry = self._open()
            con = retry if retry is not None else self._open(immutable=True)
        try:
            yield con
        finally:
            con.close()

    def _refuse_if_read_only(self, what: str) -> None:
        if self.read_only is not None:
            raise StoreReadOnly(
                f"{self.home} cannot be written ({self.read_only}), so {what}; browsing works. "
                "Make the folder writable, or point GAPSCOPE_HOME at one you can write, and restart Gapscope."
            )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._refuse_if_read_only("nothing can be saved")
        try:
            with self._connect() as con:
                if con.immutable:
                    raise DiskFull(disk_full_message(self.home, "save this"))
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
                        con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
        except sqlite3.OperationalError as err:
            if is_disk_full(err, self.home):
                raise DiskFull(disk_full_message(self.home, "save this")) from err
            if is_locked(err):
                raise StoreBusy(
                    f"Another process held the store's write lock for more than {self.busy_timeout_s:.0f} s, so this "
                    "was not saved (nothing stored was changed). Try again in a moment."
                ) from err
            raise

    def even_if_full(self, write: Callable[[], T]) -> T:
        """Run ``write``; on a full disk give back the reserve a piece at a time (``core.store.space``)
        until it fits — for the writes that must happen: a run's final status."""
        while True:
            try:
                return write()
            except DiskFull:
                if not release_reserve(self.home):
                    raise

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
        self._refuse_if_read_only("this dataset cannot be saved")
        check_space(self.home, payload_bytes(dataset), f"save {dataset.name!r}")
        folder = f"versions/{uuid.uuid4().hex}"
        tmp = self.home / f"{folder}.tmp"
        try:
            tmp.mkdir(parents=True)
            write_payload(dataset, tmp)
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
                        dataset_id,
                        parent_id,
                        kind,
                        note,
                        json.dumps(to_jsonable(params or {})),
                        len(dataset),
                        json.dumps(list(map(str, dataset.class_names))),
                        folder,
                        json.dumps(list(warnings)),
                        json.dumps([list(s) for s in skipped]),
                        now,
                    ),
                ).lastrowid
        except BaseException as err:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(self.home / folder, ignore_errors=True)
            if isinstance(err, OSError) and err.errno == errno.ENOSPC:
                raise DiskFull(disk_full_message(self.home, f"save {dataset.name!r}")) from err
            raise
        assert vid is not None  # an INSERT always has a row id
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

    def split_sizes(self, version_id: int) -> dict[int, int]:
        """Items per split code (0 train, 1 val, 2 test) of a version, from its rows file alone."""
        info = self.version(version_id)
        split = pd.read_parquet(self.home / info.folder / "rows.parquet", columns=["split"])["split"]
        return {int(k): int(v) for k, v in split.value_counts().items()}

    def load_dataset(self, version_id: int) -> Dataset:
        info = self.version(version_id)
        return read_payload(self.home / info.folder, name=info.dataset_name, modality=info.modality, class_names=info.class_names)

    # ------------------------------------------------------------------ runs
    def create_run(self, version_id: int, config: dict[str, Any], *, name: str = "") -> int:
        self.version(version_id)  # KeyError if missing
        with self._tx() as con:
            run_id = con.execute(
                "INSERT INTO runs (version_id, name, config, created_at) VALUES (?, ?, ?, ?)",
                (version_id, name, json.dumps(to_jsonable(config)), time.time()),
            ).lastrowid
        assert run_id is not None  # an INSERT always has a row id
        return int(run_id)

    def runs(self, *, status: Iterable[RunStatus] | None = None) -> list[RunRow]:
        """Run rows, newest first; ``status`` filters on the stored status."""
        sql, args = "SELECT * FROM runs", tuple[str, ...]()
        if status is not None:
            args = tuple(RunStatus(s).value for s in status)
            sql += f" WHERE status IN ({', '.join('?' * len(args))})"
        with self._connect() as con:
            rows = con.execute(sql + " ORDER BY id DESC", args).fetchall()
        return [RunRow.from_sql(r) for r in rows]

    def run(self, run_id: int) -> RunRow:
        with self._connect() as con:
            row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"run {run_id} does not exist")
        return RunRow.from_sql(row)

    def run_counts(self) -> dict[str, int]:
        with self._connect() as con:
            rows = con.execute("SELECT status, COUNT(*) AS n FROM runs GROUP BY status").fetchall()
        return {r["status"]: int(r["n"]) for r in rows}

    def run_with_metrics(self, run_id: int) -> tuple[RunRow, pd.DataFrame]:
        """A run's row and every metric row of it, read in one transaction: the same moment of the
        run (a status line never behind or ahead of the charts drawn beside it)."""
        with self._connect() as con:
            con.execute("BEGIN")  # deferred: a WAL read snapshot from the first SELECT on
            try:
                row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
                metrics = pd.read_sql_query(_METRICS_SQL, con, params=(run_id, -1))
            finally:
                con.execute("COMMIT")
        if row is None:
            raise KeyError(f"run {run_id} does not exist")
        return RunRow.from_sql(row), metrics

    # ------------------------------------------------------------------ sweeps (core.simulate.sweep)
    def create_sweep(self, version_id: int, params: dict[str, Any], *, name: str = "") -> int:
        with self._tx() as con:
            cur = con.execute(
                "INSERT INTO sweeps (version_id, name, params, created_at) VALUES (?, ?, ?, ?)",
                (version_id, name, json.dumps(params), time.time()),
            )
        return int(cur.lastrowid or 0)

    def add_sweep_run(self, sweep_id: int, severity: float, arm: str, version_id: int, run_id: int) -> None:
        with self._tx() as con:
            con.execute(
                "INSERT INTO sweep_runs (sweep_id, severity, arm, version_id, run_id) VALUES (?, ?, ?, ?, ?)",
                (sweep_id, float(severity), arm, version_id, run_id),
            )

    def sweeps(self) -> list[dict[str, Any]]:
        """Every sweep, newest first: id, version_id, name, params (dict), created_at, runs (list of
        dicts: severity, arm, version_id, run_id, ordered by severity)."""
        with self._connect() as con:
            rows = con.execute("SELECT * FROM sweeps ORDER BY id DESC").fetchall()
            runs = con.execute("SELECT * FROM sweep_runs ORDER BY sweep_id, severity, arm").fetchall()
        by_sweep: dict[int, list[dict[str, Any]]] = {}
        for r in runs:
            by_sweep.setdefault(int(r["sweep_id"]), []).append(
                {"severity": float(r["severity"]), "arm": r["arm"], "version_id": int(r["version_id"]), "run_id": int(r["run_id"])}
            )
        return [{**dict(r), "params": json.loads(r["params"]), "runs": by_sweep.get(int(r["id"]), [])} for r in rows]

    # ------------------------------------------------------------------ metrics & predictions
    def add_metrics(
        self, run_id: int, step: int, split: str, values: Mapping[str, float | None], *, epoch: float | None = None, seq: int | None = None
    ) -> bool:
        """Store one point's ``values``; return whether they were stored.

        ``seq``: the relay's sequence number of this write (a run on a Ray cluster). It is recorded
        with the rows in one transaction, and a write whose number is not above the last recorded
        one is skipped: applying a relayed event twice stores its rows once.
        """
        now = time.time()
        with self._tx() as con:
            if seq is not None:
                newer = con.execute(
                    "UPDATE runs SET relay_seq = ? WHERE id = ? AND COALESCE(relay_seq, -1) < ?", (int(seq), run_id, int(seq))
                )
                if newer.rowcount == 0:
                    return False
            con.executemany(
                "INSERT INTO metrics (run_id, step, epoch, split, name, value, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, step, epoch, split, k, finite_or_none(v), now) for k, v in values.items()],
            )
        return True

    def metrics(self, run_id: int, *, since_step: int = -1) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query(_METRICS_SQL, con, params=(run_id, since_step))

    def add_predictions(
        self, run_id: int, step: int, split: str, items: np.ndarray, labels: np.ndarray, pred: np.ndarray, conf: np.ndarray
    ) -> None:
        rows = zip(
            np.asarray(items, np.int64).tolist(),
            np.asarray(labels, np.int64).tolist(),
            np.asarray(pred, np.int64).tolist(),
            np.asarray(conf, np.float64).tolist(),
        )
        with self._tx() as con:
            con.executemany(
                "INSERT OR REPLACE INTO predictions (run_id, step, split, item, label, pred, conf) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, step, split, *r) for r in rows],
            )

    def predictions(self, run_id: int, *, split: str = "test", step: int | None = None) -> pd.DataFrame:
        with self._connect() as con:
            if step is None:
                row = con.execute("SELECT MAX(step) FROM predictions WHERE run_id = ? AND split = ?", (run_id, split)).fetchone()
                step = row[0]
            if step is None:
                return pd.DataFrame(columns=["item", "label", "pred", "conf"])
            return pd.read_sql_query(
                "SELECT item, label, pred, conf FROM predictions WHERE run_id = ? AND split = ? AND step = ? ORDER BY item",
                con,
                params=(run_id, split, step),
            )

    # ------------------------------------------------------------------ run lifecycle (core.runners, core.train)
    # See core.store.status: only the move out of an ACTIVE status is ever made, so a worker's own
    # final word is never overwritten by a runner that noticed its exit a moment later.
    _LIFECYCLE_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"progress", "message", "pid", "pid_started", "heartbeat_at", "stop_requested", "started_at", "finished_at", "name"}
        | {"stop_requested_at", "exit_code", "gpu"}
    )

    def set_run_status(self, run_id: int, status: RunStatus | None, *, only_if: Iterable[RunStatus] | None = None, **fields: Any) -> bool:
        """Set ``status`` (None: keep it) and ``fields`` if the current status is in ``only_if``;
        return whether the row changed. One transaction: a compare-and-set."""
        bad = set(fields) - self._LIFECYCLE_FIELDS
        if bad:
            raise ValueError(f"unknown run fields {sorted(bad)}; allowed: {sorted(self._LIFECYCLE_FIELDS)}")
        if status is not None:
            if RunStatus(status) == RunStatus.LOST:
                raise ValueError("'lost' is what readers see for a run whose heartbeat stopped; it is never stored")
            fields = {"status": RunStatus(status).value, **fields}
        if not fields:
            return False
        sql = f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?"
        args: tuple[Any, ...] = (*fields.values(), run_id)
        if only_if is not None:
            allowed = tuple(RunStatus(s).value for s in only_if)
            sql += f" AND status IN ({', '.join('?' * len(allowed))})"
            args += allowed
        with self._tx() as con:
            return con.execute(sql, args).rowcount > 0

    def claim_next_run(self, max_running: int, *, runner: str = "local") -> RunRow | None:
        """Move the oldest queued run to "running" if the slots it needs are free; return its row
        (None if nothing to start). A run holds one slot per process (``processes`` in its config:
        one GPU each); ``max_running`` slots in all, though a run larger than that may start alone.
        ``runner`` names who claims it (``runs.runner``: "local", or "ray" for a cluster) and only
        the slots of that runner's runs count: a cluster's slots are not this machine's.
        Atomic, so two app processes sharing a home never start the same run twice."""
        queued = RunStatus.QUEUED.value
        with self._connect() as con:  # the common case, nothing queued, needs no write lock
            if con.execute("SELECT 1 FROM runs WHERE status = ? LIMIT 1", (queued,)).fetchone() is None:
                return None
        working = tuple(s.value for s in WORKING)
        with self._tx() as con:
            sql = f"SELECT COALESCE(SUM({_SLOTS}), 0) FROM runs WHERE status IN ({', '.join('?' * len(working))}) AND {_RUNNER} = ?"
            used = int(con.execute(sql, (*working, runner)).fetchone()[0])
            row = con.execute(f"SELECT id, {_SLOTS} AS slots FROM runs WHERE status = ? ORDER BY id LIMIT 1", (queued,)).fetchone()
            if row is None or (used > 0 and used + int(row["slots"]) > max_running):
                return None
            now = time.time()
            con.execute(
                "UPDATE runs SET status = ?, started_at = ?, heartbeat_at = ?, message = 'starting', runner = ? WHERE id = ?",
                (RunStatus.RUNNING.value, now, now, runner, row["id"]),
            )
            run_id = int(row["id"])
        return self.run(run_id)

    def request_stop(self, run_id: int) -> RunStatus:
        """Ask a run to stop; return its status afterwards.

        A queued run becomes "stopped" at once; a running one becomes "stopping" and its worker
        stops after the step it is in (it polls ``stop_requested``). Ended runs are left alone.
        """
        now = time.time()
        with self._tx() as con:
            row = con.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(f"run {run_id} does not exist")
            status = RunStatus(row["status"])
            if status == RunStatus.QUEUED:
                con.execute(
                    "UPDATE runs SET status = ?, stop_requested = 1, stop_requested_at = ?, finished_at = ?,"
                    " message = 'stopped before it started' WHERE id = ?",
                    (RunStatus.STOPPED.value, now, now, run_id),
                )
                return RunStatus.STOPPED
            if status == RunStatus.RUNNING:
                con.execute(
                    "UPDATE runs SET status = ?, stop_requested = 1, stop_requested_at = ? WHERE id = ?",
                    (RunStatus.STOPPING.value, now, run_id),
                )
                return RunStatus.STOPPING
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


_SLOTS = "MAX(1, COALESCE(json_extract(config, '$.processes'), 1))"  # slots (GPUs) a run holds
_RUNNER = "COALESCE(runner, 'local')"  # who holds a run (NULL: claimed before runs.runner existed)

_METRICS_SQL = "SELECT step, epoch, split, name, value, created_at FROM metrics WHERE run_id = ? AND step > ? ORDER BY step, split, name"


def payload_bytes(dataset: Dataset) -> int:
    """About how many bytes ``write_payload`` puts on disk for ``dataset`` (items plus rows)."""
    items = dataset.items
    if isinstance(items, np.ndarray) and items.dtype != object:
        size = int(items.nbytes)
    elif isinstance(items, pd.DataFrame):
        size = int(items.memory_usage(deep=True).sum())
    elif dataset.tags is not None:  # tokens: each token and tag, and an offset for each
        size = sum(len(t) + 4 for seqs in (items, dataset.tags) for seq in seqs for t in seq)
    else:
        size = sum(len(str(x)) for x in items)
    return size + 64 * len(dataset) + 2**20


def _version_info(r: sqlite3.Row) -> VersionInfo:
    return VersionInfo(
        id=int(r["id"]),
        dataset_id=int(r["dataset_id"]),
        dataset_name=r["dataset_name"],
        modality=r["modality"],
        source=r["source"],
        parent_id=r["parent_id"],
        kind=r["kind"],
        note=r["note"],
        params=json.loads(r["params"]),
        n_items=int(r["n_items"]),
        class_names=json.loads(r["class_names"]),
        folder=r["folder"],
        warnings=json.loads(r["warnings"]),
        skipped=[tuple(s) for s in json.loads(r["skipped"])],
        created_at=float(r["created_at"]),
        archived=bool(r["archived"]),
    )
