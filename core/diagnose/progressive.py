"""A diagnosis that shows something soon: a seeded, stratified sample first, then every item.

A full diagnosis of Fashion-MNIST or of 38k tweets takes minutes on two cores, almost all of it
embedding. The label-noise estimates (noise matrix, noise rate per class, estimated noise rate) are
already informative on a few hundred to a few thousand items, so ``DiagnosisJob`` runs ``diagnose``
on a sample (stratified by label, seeded) and then on the whole version. The sample's embeddings
land in the item cache (``core.embed.cache.ItemStore``), so the full pass does not embed them again.
``latest`` tells any page the best result on disk: the full diagnosis, else the largest sample's.

How large a first sample: the largest of ``SAMPLE_SIZES`` whose embedding this machine is expected
to finish within ``FIRST_ESTIMATE_S`` (``first_sample_size``; the estimate is calibrated by the
throughput the machine measured before, ``core.embed.throughput``), and never fewer than the
smallest. Images at 64 px embed at hundreds a second, so they get 3,000; MiniLM on a busy 2-core
machine manages tens of texts a second, so 38k tweets get 500 — a rough first number
(``benchmarks/RESULTS.md``, *Text embedding speed*: 0.275 against the full pass's 0.129 there).

Time left is said in words by ``eta_words`` ("about 3 min", "about 40 s"), from a prediction that
the job corrects with the speed it measures as it goes (``DiagnosisJob.seconds_left``).

The job runs in a thread of the app process; pages poll ``status``. No streamlit here.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.dataset import Dataset
from core.diagnose.pipeline import DiagnoseConfig, Diagnosis, Progress, cache_path, detection_seconds, diagnose
from core.embed import embeddings

#: the first-sample sizes, largest first. 500 is the floor: 400 items per probe fold, ≥ 10 per class.
#: Its noise rate is rough: on 38k VADER-based texts it read 0.275 against the full pass's 0.129
#: (benchmarks/RESULTS.md, Text embedding speed), a weaker probe disagreeing with more labels.
SAMPLE_SIZES = (3_000, 1_500, 500)
SAMPLE_SIZE = SAMPLE_SIZES[0]
#: Datasets smaller than this are diagnosed whole at once: a sample would save little.
SAMPLE_FROM = 2 * SAMPLE_SIZE
#: seconds of embedding the first sample may take (imports, model loading and detection come on top)
FIRST_ESTIMATE_S = 20.0
#: seconds a job's thread spends before its first batch: importing torch and transformers
STARTUP_S = 5.0


def eta_words(seconds: float) -> str:
    """A duration as a page says it: "a few seconds", "about 40 s", "about 3 min", "about 1.5 h".

    Under a minute it is rounded to 5 s (whole seconds under 20 s), under 90 minutes to whole
    minutes, beyond that to half hours: an estimate is never more precise than that.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be a finite number of seconds ≥ 0, got {seconds}")
    if seconds < 5:
        return "a few seconds"
    if seconds < 20:
        return f"about {round(seconds)} s"
    if seconds < 57.5:
        return f"about {5 * round(seconds / 5)} s"
    if seconds < 90 * 60:
        return f"about {max(1, round(seconds / 60))} min"
    hours = round(seconds / 1800) / 2
    return f"about {hours:g} h"


def progress_words(scope: str, stage: str, seconds_left: float | None) -> str:
    """The background diagnosis's progress line: which pass, its stage, and the time left."""
    what = "a stratified sample, for a first estimate" if scope == "sample" else "every item"
    left = "" if seconds_left is None else f" — {eta_words(seconds_left)} left"
    return f"Diagnosing {what}: {stage}…{left}"


def first_sample_size(ds: Dataset, cfg: DiagnoseConfig) -> int:
    """The first sample's size: the largest of ``SAMPLE_SIZES`` whose items not embedded before
    this machine should embed within ``FIRST_ESTIMATE_S`` (the smallest when none would)."""
    for n in SAMPLE_SIZES:
        sample = ds.subset(sample_rows(ds, n, seed=cfg.seed))
        missing = embeddings.uncached_items(sample, backbone=cfg.backbone)
        if missing == 0 or embeddings.estimate_seconds(sample.subset(np.arange(missing)), cfg.backbone) <= FIRST_ESTIMATE_S:
            return n
    return SAMPLE_SIZES[-1]


def first_estimate(ds: Dataset, cfg: DiagnoseConfig) -> tuple[int, float]:
    """(first sample's size, seconds until its estimate is on disk): what the Diagnose page
    promises before a background diagnosis starts."""
    n = first_sample_size(ds, cfg)
    embed, detect = pass_seconds(sample_of(ds, n, seed=cfg.seed), cfg)
    return n, STARTUP_S + embed + detect


def pass_seconds(ds: Dataset, cfg: DiagnoseConfig, *, embedded: int = 0) -> tuple[float, float]:
    """(embedding, detection) seconds a pass over ``ds`` should take here, counting ``embedded`` of
    its items as already embedded (the first sample's, before it is cached)."""
    missing = max(0, embeddings.uncached_items(ds, backbone=cfg.backbone) - embedded)
    embed = 0.0 if missing == 0 else embeddings.estimate_seconds(ds.subset(np.arange(missing)), cfg.backbone)
    return embed, detection_seconds(ds)


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


def sample_of(ds: Dataset, n: int = SAMPLE_SIZE, *, seed: int = 0) -> Dataset:
    return ds.subset(sample_rows(ds, n, seed=seed))


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
    """Where the full diagnosis and each size of sample diagnosis of one version would be cached
    (a version never changes, so pages may keep this and check the files cheaply)."""

    full: Path
    samples: tuple[tuple[Path, np.ndarray], ...] = ()  # (cache file, rows) per SAMPLE_SIZES, largest first

    def best_sample(self) -> tuple[Path, np.ndarray] | None:
        """The largest sample diagnosed so far: (its cache file, its rows), or None."""
        return next(((p, rows) for p, rows in self.samples if p.exists()), None)

    def available(self) -> str | None:
        """ "full", "sample" or None: the best diagnosis on disk now."""
        if self.full.exists():
            return "full"
        return "sample" if self.best_sample() is not None else None


def locations(ds: Dataset, cfg: DiagnoseConfig) -> Locations:
    if len(ds) < SAMPLE_FROM:
        return Locations(cache_path(ds, cfg))
    samples = []
    for n in SAMPLE_SIZES:
        rows = sample_rows(ds, n, seed=cfg.seed)
        samples.append((cache_path(ds.subset(rows), cfg), rows))
    return Locations(cache_path(ds, cfg), tuple(samples))


def load(ds: Dataset, cfg: DiagnoseConfig, where: Locations, scope: str) -> Result:
    """The cached ``scope`` ("full" or "sample": the largest sample on disk) diagnosis of ``ds``."""
    if scope == "full":
        return Result("full", diagnose(ds, cfg), np.arange(len(ds)))
    best = where.best_sample()
    if best is None:
        raise ValueError("no sample of this version has been diagnosed with these settings yet")
    return Result("sample", diagnose(ds.subset(best[1]), cfg), best[1])


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
    "done" / "failed"). ``seconds_left()`` → the time the whole job still needs. A failure keeps
    its message in ``error``; results are on disk (``latest``).
    """

    def __init__(self, ds: Dataset, cfg: DiagnoseConfig) -> None:
        super().__init__(daemon=True, name="gapscope-diagnosis")
        self.ds, self.cfg = ds, cfg
        self._lock = threading.Lock()
        self._stage, self._frac, self._scope = "starting", 0.0, "sample" if len(ds) >= SAMPLE_FROM else "full"
        self.sample_size: int | None = None  # chosen when the job starts
        self.error: str | None = None
        # the plan: (scope, embedding s, detection s) per pass still to run, and where the current one is
        self._plan: list[tuple[str, float, float]] = []
        self._pass_start = time.monotonic()
        self._embed_done: tuple[int, int, float] | None = None  # (done, total, seconds since the pass began)

    def status(self) -> tuple[str, float, str]:
        with self._lock:
            return self._stage, self._frac, self._scope

    def seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until every item is diagnosed, or None before the plan is made / once done.

        The current pass's embedding is extrapolated from its own measured speed once a batch has
        finished (time so far × items left / items done); until then, and for the passes after it,
        the calibrated prediction counts (``pass_seconds``).
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            if not self._plan or self._scope in ("done", "failed"):
                return None
            (_, embed, detect), later = self._plan[0], self._plan[1:]
            elapsed = now - self._pass_start
            if self._embed_done is not None and 0 < self._embed_done[0] < self._embed_done[1]:
                done, total, at = self._embed_done
                left = max(0.0, at * (total - done) / done - (elapsed - at)) + detect
            elif self._embed_done is not None and self._embed_done[0] >= self._embed_done[1]:
                left = max(0.0, detect - (elapsed - self._embed_done[2]))
            else:
                left = max(0.0, embed - elapsed) + detect
            return left + sum(e + d for _, e, d in later)

    def _report(self, scope: str) -> Progress:
        def report(stage: str, frac: float) -> None:
            with self._lock:
                self._stage, self._frac, self._scope = stage, float(frac), scope

        return report

    def _embedding(self, done: int, total: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._embed_done = (done, total, now - self._pass_start)

    def _next_pass(self) -> None:
        with self._lock:
            if self._plan:
                self._plan.pop(0)
            self._pass_start, self._embed_done = time.monotonic(), None

    def _make_plan(self) -> Dataset | None:
        """The sample to diagnose first (None for a small version) and the passes' predicted times."""
        sample = None
        if len(self.ds) >= SAMPLE_FROM:
            self.sample_size = first_sample_size(self.ds, self.cfg)
            sample = sample_of(self.ds, self.sample_size, seed=self.cfg.seed)
        plan = []
        if sample is not None:
            plan.append(("sample", *pass_seconds(sample, self.cfg)))
        plan.append(("full", *pass_seconds(self.ds, self.cfg, embedded=0 if sample is None else len(sample))))
        with self._lock:
            self._plan, self._pass_start, self._embed_done = plan, time.monotonic(), None
        return sample

    def run(self) -> None:
        try:
            sample = self._make_plan()
            if sample is not None:
                diagnose(sample, self.cfg, progress=self._report("sample"), embed_progress=self._embedding)
                self._next_pass()
                # the sample measured this machine's speed: predict the full pass with it
                embed, detect = pass_seconds(self.ds, self.cfg)
                with self._lock:
                    self._plan = [("full", embed, detect)]
            diagnose(self.ds, self.cfg, progress=self._report("full"), embed_progress=self._embedding)
            self._report("done")("done", 1.0)
        except Exception as err:  # shown on the page; the app keeps running
            traceback.print_exc()
            self.error = f"{type(err).__name__}: {err}"
            self._report("failed")("failed", 1.0)
