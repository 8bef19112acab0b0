"""A diagnosis that shows something in seconds: a seeded, stratified sample first, then every item.

A full diagnosis of Fashion-MNIST takes minutes on two cores, almost all of it embedding. The
label-noise estimates (noise matrix, noise rate per class, estimated noise rate) are already
informative on a few thousand items, so ``DiagnosisJob`` runs ``diagnose`` on a sample of
``SAMPLE_SIZE`` items (stratified by label, seeded) and then on the whole version. The sample's
embeddings land in the item cache (``core.embed.cache.ItemStore``), so the full pass does not embed
them again. ``latest`` tells any page the best result on disk: the full diagnosis, else the sample's.

The job runs in a thread of the app process; pages poll ``status``. No streamlit here.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.dataset import Dataset
from core.diagnose.pipeline import DiagnoseConfig, Diagnosis, Progress, cache_path, diagnose

SAMPLE_SIZE = 3_000
#: Datasets smaller than this are diagnosed whole at once: a sample would save little.
SAMPLE_FROM = 2 * SAMPLE_SIZE


def sample_rows(ds: Dataset, n: int = SAMPLE_SIZE, *, seed: int = 0) -> np.ndarray:
    """``n`` rows (sorted), each class in proportion to its size but with at least
    ``min(its size, 10)`` rows, so rare classes have a noise estimate too; seeded."""
    rng = np.random.default_rng(seed)
    if len(ds) <= n:
        return np.arange(len(ds))
    rows: list[np.ndarray] = []
    classes, counts = np.unique(ds.labels, return_counts=True)
    for c, count in zip(classes, counts):
        members = np.flatnonzero(ds.labels == c)
        take = min(count, max(round(n * count / len(ds)), 10))
        rows.append(rng.choice(members, take, replace=False))
    return np.sort(np.concatenate(rows))


def sample_of(ds: Dataset, *, seed: int = 0) -> Dataset:
    return ds.subset(sample_rows(ds, seed=seed))


@dataclass(frozen=True)
class Result:
    """A diagnosis and what it covers: ``"full"`` (every item) or ``"sample"`` (``rows`` of the version)."""

    scope: str
    diagnosis: Diagnosis
    rows: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Locations:
    """Where the full and the sample diagnosis of one version would be cached (a version never
    changes, so pages may keep this and check the files cheaply)."""

    full: Path
    sample: Path | None
    rows: np.ndarray | None

    def available(self) -> str | None:
        """ "full", "sample" or None: the best diagnosis on disk now."""
        if self.full.exists():
            return "full"
        if self.sample is not None and self.sample.exists():
            return "sample"
        return None


def locations(ds: Dataset, cfg: DiagnoseConfig) -> Locations:
    if len(ds) < SAMPLE_FROM:
        return Locations(cache_path(ds, cfg), None, None)
    rows = sample_rows(ds, seed=cfg.seed)
    return Locations(cache_path(ds, cfg), cache_path(ds.subset(rows), cfg), rows)


def load(ds: Dataset, cfg: DiagnoseConfig, where: Locations, scope: str) -> Result:
    """The cached ``scope`` ("full" or "sample") diagnosis of ``ds``."""
    if scope == "full":
        return Result("full", diagnose(ds, cfg), np.arange(len(ds)))
    assert where.rows is not None
    return Result("sample", diagnose(ds.subset(where.rows), cfg), where.rows)


def latest(ds: Dataset, cfg: DiagnoseConfig | None = None) -> Result | None:
    """The best diagnosis of ``ds`` on disk: the full one, else the sample's, else None (nothing
    is computed: a cache miss returns None at once)."""
    cfg = cfg if cfg is not None else DiagnoseConfig()
    where = locations(ds, cfg)
    scope = where.available()
    return None if scope is None else load(ds, cfg, where, scope)


class DiagnosisJob(threading.Thread):
    """Diagnose ``ds`` in the background: the sample (when the version is large), then every item.

    ``status()`` → (stage text, fraction 0..1 of the current pass, scope being computed or
    "done" / "failed"). A failure keeps its message in ``error``; results are on disk (``latest``).
    """

    def __init__(self, ds: Dataset, cfg: DiagnoseConfig) -> None:
        super().__init__(daemon=True, name="gapscope-diagnosis")
        self.ds, self.cfg = ds, cfg
        self._lock = threading.Lock()
        self._stage, self._frac, self._scope = "starting", 0.0, "sample" if len(ds) >= SAMPLE_FROM else "full"
        self.error: str | None = None

    def status(self) -> tuple[str, float, str]:
        with self._lock:
            return self._stage, self._frac, self._scope

    def _report(self, scope: str) -> Progress:
        def report(stage: str, frac: float) -> None:
            with self._lock:
                self._stage, self._frac, self._scope = stage, float(frac), scope

        return report

    def run(self) -> None:
        try:
            if len(self.ds) >= SAMPLE_FROM:
                diagnose(sample_of(self.ds, seed=self.cfg.seed), self.cfg, progress=self._report("sample"))
            diagnose(self.ds, self.cfg, progress=self._report("full"))
            self._report("done")("done", 1.0)
        except Exception as err:  # shown on the page; the app keeps running
            traceback.print_exc()
            self.error = f"{type(err).__name__}: {err}"
            self._report("failed")("failed", 1.0)
