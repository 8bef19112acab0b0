"""The store, the single source of truth: SQLite (WAL) for datasets, runs, metrics and predictions,
plus files under ``GAPSCOPE_HOME`` (dataset payloads, each run's artifacts). See ARCHITECTURE.md."""

from core.store.artifacts import RunFiles, run_dir
from core.store.database import Store, VersionInfo
from core.store.rows import RunRow
from core.store.schema import SCHEMA_VERSION
from core.store.status import ACTIVE, ENDED, WORKING, RunStatus

__all__ = ["ACTIVE", "ENDED", "SCHEMA_VERSION", "WORKING", "RunFiles", "RunRow", "RunStatus", "Store", "VersionInfo", "run_dir"]
