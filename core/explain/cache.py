"""Attributions kept per run, and the background job that fills them for a gallery.

An attribution is stored under the run's folder (``explain/``), named by the evaluation whose
model it explains, the item, the class and the method, so a later look (another tab, a restart)
reads it back instead of recomputing; a run's newer result model gets new files.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import atomic_write
from core.explain.kinds import METHODS, Attribution
from core.store.artifacts import RunFiles


def path(files: RunFiles, step: int, item: int, cls: int, method: str) -> Path:
    return files.folder / "explain" / f"s{int(step)}-i{int(item)}-c{int(cls)}-{method}.npz"


def save(files: RunFiles, step: int, attr: Attribution) -> None:
    spans = np.asarray(attr.spans, dtype=np.int64).reshape(-1, 2)

    def write(fh: Any) -> None:
        np.savez(
            fh, values=attr.values, parts=np.asarray(attr.parts, dtype=str), spans=spans,
            meta=np.array([attr.prob, np.nan if attr.delta is None else attr.delta, attr.seconds]),
        )  # fmt: skip

    atomic_write(path(files, step, attr.item, attr.target, attr.method), write)


def load(files: RunFiles, step: int, item: int, cls: int, method: str) -> Attribution | None:
    p = path(files, step, item, cls, method)
    if not p.exists():
        return None
    with np.load(p, allow_pickle=False) as z:
        prob, delta, seconds = (float(v) for v in z["meta"])
        spans = [(int(a), int(b)) for a, b in z["spans"]]
        return Attribution(
            int(item), int(cls), method, z["values"], [str(w) for w in z["parts"]], prob,
            None if np.isnan(delta) else delta, seconds, spans,
        )  # fmt: skip


def stored(files: RunFiles, step: int) -> set[tuple[int, int, str]]:
    """The (item, class, method) attributions kept for the run's model at evaluation ``step``."""
    out = set()
    for p in (files.folder / "explain").glob(f"s{int(step)}-i*-c*-*.npz"):
        _, item, cls, method = p.stem.split("-", 3)
        out.add((int(item[1:]), int(cls[1:]), method))
    return out


def cached_or_computed(explainer: Any, files: RunFiles, step: int, item: int, cls: int, method: str) -> Attribution:
    """The stored attribution, or one computed now and stored."""
    got = load(files, step, item, cls, method)
    if got is None:
        got = explainer.attribute(item, cls, method)
        save(files, step, got)
    return got


class ExplainJob(threading.Thread):
    """Attributions of ``pairs`` — (item, class) — by every method of the run's modality, in the
    background; those already stored are skipped. ``status()`` → (done, total, stage);
    a failure keeps its message in ``error``."""

    def __init__(self, home: str | Path, run_id: int, pairs: list[tuple[int, int]]) -> None:
        super().__init__(daemon=True, name=f"gapscope-explain-{run_id}")
        self.home, self.run_id, self.pairs = Path(home), int(run_id), list(pairs)
        self._lock = threading.Lock()
        self._done, self._total, self._stage = 0, 0, "loading the model"
        self.error: str | None = None
        self.seconds = 0.0

    def status(self) -> tuple[int, int, str]:
        with self._lock:
            return self._done, self._total, self._stage

    def _set(self, done: int, total: int, stage: str) -> None:
        with self._lock:
            self._done, self._total, self._stage = done, total, stage

    def _embed(self, ds: Any, done: int, total: int) -> None:
        """Embed the version (``core.embed``, cached) unless it already is: the nearest train items read it."""
        from core.embed.embeddings import embed, uncached_items

        if ds.modality == "tabular" or uncached_items(ds) == 0:
            return

        def report(n: int, of: int) -> None:
            self._set(done, total, f"embedding the version for the nearest train items ({n:,} of {of:,})")

        embed(ds, progress=report)

    def run(self) -> None:
        from core.explain.attribute import Explainer
        from core.store import Store
        from core.train.apply import load_run_model

        t0 = time.perf_counter()
        try:
            model = load_run_model(Store(self.home), self.run_id, device="cpu")
            explainer = Explainer(model)
            files = RunFiles(self.run_id, home=self.home)
            todo = [(i, c, m) for i, c in self.pairs for m in METHODS[model.ds.modality] if explainer.position(c) is not None]
            total = len(todo) + 1  # the last step: the version's embeddings, for the nearest train items
            for n, (i, c, m) in enumerate(todo):
                self._set(n, total, f"item {i}: {m.replace('_', ' ')}")
                cached_or_computed(explainer, files, model.step, i, c, m)
            self._embed(model.ds, len(todo), total)
            self._set(total, total, "done")
        except Exception as err:  # the page shows it; the app goes on
            self.error = f"{type(err).__name__}: {err}"
            with self._lock:
                self._stage = "failed"
        self.seconds = time.perf_counter() - t0
