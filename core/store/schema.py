"""The SQLite schema: ordered migrations, applied in one transaction when a store is opened.

The schema version lives in ``PRAGMA user_version``. Each entry of ``MIGRATIONS`` upgrades it
from i to i + 1. Append, never edit a shipped entry.

A migration that changes a constraint rebuilds its table as SQLite's documentation says (ALTER
TABLE cannot change a CHECK): create the new table, copy the rows, drop the old one, rename, make
its indexes again. ``migrate`` therefore runs with foreign-key enforcement off (it cannot be
switched inside a transaction) and checks every foreign key before it commits.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

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
    # 1 → 2: background runs (core.runners): when a stop was asked, how the worker ended, which GPU
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
    # 3 → 4: severity sweeps (core.simulate.sweep): one simulated version and run per severity and arm
    """
    CREATE TABLE sweeps (
        id          INTEGER PRIMARY KEY,
        version_id  INTEGER NOT NULL REFERENCES dataset_versions(id),  -- the clean parent
        name        TEXT NOT NULL DEFAULT '',
        params      TEXT NOT NULL DEFAULT '{}',   -- JSON: knob, severities, base recipe, run config, preset
        created_at  REAL NOT NULL
    );
    CREATE TABLE sweep_runs (
        sweep_id    INTEGER NOT NULL REFERENCES sweeps(id),
        severity    REAL NOT NULL,
        arm         TEXT NOT NULL,                -- baseline | mitigated
        version_id  INTEGER NOT NULL REFERENCES dataset_versions(id),
        run_id      INTEGER NOT NULL REFERENCES runs(id),
        PRIMARY KEY (sweep_id, severity, arm)
    ) WITHOUT ROWID;
    """,
    # 4 → 5: which runner holds a run: NULL or 'local' (core.runners.local), 'ray' (core.runners.ray)
    """
    ALTER TABLE runs ADD COLUMN runner TEXT;
    """,
    # 5 → 6: the sequence number of the last relayed metrics event a run's rows hold (core.runners.ray):
    # an event the relay sends again after the app restarted is not applied twice
    """
    ALTER TABLE runs ADD COLUMN relay_seq INTEGER;
    """,
    # 6 → 7: token classification (core.tokens): a dataset's modality may be 'tokens'. The table is
    # rebuilt to change its CHECK; ids are kept, so dataset_versions' references still hold
    """
    CREATE TABLE datasets_new (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL,
        modality    TEXT NOT NULL CHECK (modality IN ('text', 'image', 'tabular', 'tokens')),
        source      TEXT NOT NULL,              -- 'demo:fashion-mnist', 'upload:reviews.csv', …
        created_at  REAL NOT NULL
    );
    INSERT INTO datasets_new (id, name, modality, source, created_at)
        SELECT id, name, modality, source, created_at FROM datasets;
    DROP TABLE datasets;
    ALTER TABLE datasets_new RENAME TO datasets;
    CREATE UNIQUE INDEX datasets_demo ON datasets(source) WHERE source LIKE 'demo:%';
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def split_sql(script: str) -> list[str]:
    return [
        s.strip()
        for s in script.split(";")
        if s.strip() and not all(line.strip().startswith("--") or not line.strip() for line in s.strip().splitlines())
    ]


def migrate(con: sqlite3.Connection, db_path: Path) -> None:
    """Bring the database on ``con`` to ``SCHEMA_VERSION`` (no-op when it is there already)."""
    current = con.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"{db_path} has schema version {current}, newer than this Gapscope ({SCHEMA_VERSION}). "
            "Upgrade Gapscope, or point GAPSCOPE_HOME at another folder."
        )
    if current == SCHEMA_VERSION:
        return
    enforced = con.execute("PRAGMA foreign_keys").fetchone()[0]
    con.execute("PRAGMA foreign_keys=OFF")  # a table rebuild drops a table other tables refer to
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            current = con.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            statements = [(v, s) for v in range(current, SCHEMA_VERSION) for s in split_sql(MIGRATIONS[v])]
            rebuilt = {m.group(1) for _, s in statements if (m := _DROP_TABLE.match(s))}
            children = _referring(con, rebuilt)
            before = _broken_keys(con, children)
            for version in range(current, SCHEMA_VERSION):
                for statement in split_sql(MIGRATIONS[version]):
                    con.execute(statement)
                con.execute(f"PRAGMA user_version = {version + 1}")
            broken = _broken_keys(con, children) - before
            if broken:
                raise RuntimeError(f"migrating {db_path} would break {len(broken)} foreign key(s), e.g. {min(broken)}; nothing was changed")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")


_DROP_TABLE = re.compile(r"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(\w+)", re.IGNORECASE)


def _referring(con: sqlite3.Connection, parents: set[str]) -> list[str]:
    """The tables with a foreign key into one of ``parents``."""
    if not parents:
        return []
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
    return [t for t in tables if any(fk[2] in parents for fk in con.execute(f"PRAGMA foreign_key_list({t})").fetchall())]


def _broken_keys(con: sqlite3.Connection, tables: list[str]) -> set[tuple]:
    """Rows of ``tables`` whose foreign key points at no row: (table, rowid, parent, key number)."""
    return {tuple(r) for t in tables for r in con.execute(f"PRAGMA foreign_key_check({t})").fetchall()}
