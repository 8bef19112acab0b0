"""A run's files under ``GAPSCOPE_HOME/runs/<id>/`` — their layout, writers and torch-free readers.

::

    runs/<id>/
      config.json              the resolved RunConfig
      summary.json             outcome: status, steps, best step and metric, temperature, timings
      log.txt                  the worker's stdout and stderr (written by the runner)
      node.json                a run on a Ray cluster: its node, pid, home there, SQLite files it opened (none)
      written.txt              the run's ledger: its rows in the store, and a write in flight (``Ledger``)
      best.pt, last.pt         checkpoints (core.train.checkpoints reads and writes them; torch)
      evals/<step>.json        per evaluation and split: reliability bins, confusion matrices
      evals/<step>_<split>_probs.npz   held-out probabilities (rows, probs, classes)
      evals/<step>_<split>_tokens.npz  a token run's word probabilities (rows, offsets, probs, tags;
                                       ``read_word_probs``)

Gapscope never deletes any of them. Every file is written atomically (``core.atomic``), so a
reader never sees half a file while the worker writes it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from core import paths
from core.atomic import atomic_write, atomic_write_json

EVALS = "evals"
DYNAMICS = "dynamics.npz"  # per train item and epoch: core.train.dynamics


def run_dir(run_id: int, *, home: str | Path | None = None) -> Path:
    return Path(home if home is not None else paths.home()) / "runs" / str(int(run_id))


def tail_of(path: Path, n: int = 50) -> str:
    """The last ``n`` lines of the text file ``path`` ("" if absent); reads at most its last 256 KiB."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - (256 << 10)))
            data = fh.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(lines[-n:]) if n > 0 else ""


def read_word_probs(folder: Path, step: int, split: str = "test") -> tuple[np.ndarray, list[np.ndarray], list[str]] | None:
    """A token run's word probabilities of one evaluation (``core.tokens.train.write_word_probs``):
    (dataset rows, per sentence an array (n_words, C) float32, the model's C tag names); None if absent."""
    path = Path(folder) / EVALS / f"{int(step)}_{split}_tokens.npz"
    if not path.exists():
        return None
    with np.load(path) as z:
        offsets, probs = z["offsets"], z["probs"].astype(np.float32)
        return z["rows"], [probs[a:b] for a, b in pairwise(offsets)], [str(t) for t in z["tags"]]


class RunFiles:
    """The files of run ``run_id`` (the folder need not exist yet)."""

    def __init__(self, run_id: int, *, home: str | Path | None = None) -> None:
        self.run_id = int(run_id)
        self.folder = run_dir(run_id, home=home)

    # ------------------------------------------------------------------ paths
    @property
    def log_path(self) -> Path:
        return self.folder / "log.txt"

    @property
    def ledger_path(self) -> Path:
        return self.folder / "written.txt"

    def ledger(self) -> dict[str, int] | None:
        """What the worker reported storing: ``metrics`` and ``predictions`` rows committed, and
        ``pending_metrics`` / ``pending_predictions`` of a write it had begun (0 when none). None
        for a run without a ledger."""
        try:
            words = self.ledger_path.read_text().split()
        except FileNotFoundError:
            return None
        return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}

    def checkpoint_path(self, which: str = "best") -> Path:
        if which not in ("best", "last"):
            raise ValueError(f"a run keeps the 'best' and the 'last' checkpoint, not {which!r}")
        return self.folder / f"{which}.pt"

    def _eval_path(self, step: int) -> Path:
        return self.folder / EVALS / f"{int(step)}.json"

    def _probs_path(self, step: int, split: str) -> Path:
        return self.folder / EVALS / f"{int(step)}_{split}_probs.npz"

    # ------------------------------------------------------------------ small JSON files
    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.folder / name, obj)

    def read_json(self, name: str) -> dict[str, Any] | None:
        """``config.json`` or ``summary.json`` as a dict; None when absent."""
        try:
            return json.loads((self.folder / name).read_text())
        except FileNotFoundError:
            return None

    def log_tail(self, n: int = 50) -> str:
        """The last ``n`` lines of the run's log ("" if absent)."""
        return tail_of(self.log_path, n)

    # ------------------------------------------------------------------ evaluations
    def eval_steps(self) -> list[int]:
        """Steps that have an evaluation artifacts file, ascending."""
        folder = self.folder / EVALS
        return sorted(int(p.stem) for p in folder.glob("*.json")) if folder.exists() else []

    def write_eval(self, step: int, epoch: float, classes: np.ndarray, absent: np.ndarray, parts: dict[str, dict[str, Any]]) -> None:
        """Add ``parts`` (split name → reliability, confusion, unknown_confusion) to evaluation
        ``step``'s file, creating it with the class lists when it is the first."""
        path = self._eval_path(step)
        art = json.loads(path.read_text()) if path.exists() else {
            "step": int(step), "epoch": float(epoch), "classes": np.asarray(classes).tolist(),
            "absent_classes": np.asarray(absent).tolist(),
        }  # fmt: skip
        art.update(parts)
        atomic_write_json(path, art)

    def eval_artifacts(self, step: int | None = None) -> dict[str, Any]:
        """Reliability bins and confusion matrices of one evaluation (the latest when ``step`` is None).

        Returns
        -------
        dict
            ``step``, ``epoch``, ``classes`` (dataset class index of each model output, length K),
            ``absent_classes`` (dataset classes missing from train), and per split present
            (``val``, ``test``, and after temperature scaling ``val_ts``, ``test_ts``) a dict with
            ``reliability`` (``lower``, ``upper``, ``count``, ``mean_conf``, ``accuracy``: arrays of
            shape (15,), ``nan`` for empty bins), ``confusion`` (int (K, K), rows true, columns
            predicted) and ``unknown_confusion`` (int (len(absent_classes), K)).
            Empty dict when the run has no evaluation yet, or none at ``step`` yet: the metric
            rows of an evaluation may be stored before its file arrives (a run on a Ray cluster
            sends its rows at once and its files with the next heartbeat).
        """
        steps = self.eval_steps()
        if not steps:
            return {}
        path = self._eval_path(steps[-1] if step is None else step)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        k = len(raw["classes"])
        for part in raw.values():
            if isinstance(part, dict) and "reliability" in part:
                part["reliability"] = {
                    key: np.array([np.nan if v is None else v for v in values], dtype=np.int64 if key == "count" else np.float64)
                    for key, values in part["reliability"].items()
                }
                for key in ("confusion", "unknown_confusion"):
                    if key in part:
                        part[key] = np.array(part[key], dtype=np.int64).reshape(-1, k)
        return raw

    def word_probs(self, step: int, split: str = "test") -> tuple[np.ndarray, list[np.ndarray], list[str]] | None:
        """A token run's word probabilities at evaluation ``step`` (``read_word_probs``); None if absent."""
        return read_word_probs(self.folder, step, split)

    def write_heldout_probs(self, step: int, split: str, rows: np.ndarray, probs: np.ndarray, classes: np.ndarray) -> None:
        """Full held-out probabilities of one evaluation, for diagnosing label noise with the run."""

        def write(fh: Any) -> None:
            np.savez(fh, rows=rows.astype(np.int64), probs=probs.astype(np.float32), classes=classes.astype(np.int64))

        atomic_write(self._probs_path(step, split), write)

    def write_dynamics(self, arrays: dict[str, np.ndarray]) -> None:
        """The run's training dynamics (``core.train.dynamics``), at the end of training."""
        atomic_write(self.folder / DYNAMICS, lambda fh: np.savez_compressed(fh, **arrays))  # type: ignore[arg-type]  # numpy's stub reads **kwds as allow_pickle

    def has_dynamics(self) -> bool:
        """The run kept its training dynamics (``dynamics.npz``)."""
        return (self.folder / DYNAMICS).exists()

    def dynamics(self) -> dict[str, np.ndarray] | None:
        """``dynamics.npz`` as arrays (rows, p_given, right, el2n, forgetting, presentations); None
        when the run has none (still training, a token or distributed run, or an older run)."""
        path = self.folder / DYNAMICS
        if not path.exists():
            return None
        with np.load(path) as z:
            return {k: z[k] for k in z.files}

    def model_probs(self, step: int, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(dataset rows, probabilities over the model's classes, those classes) of the held-out
        ``split`` at evaluation ``step``, as written; None when the run has no such file."""
        path = self._probs_path(step, split)
        if not path.exists():
            return None
        with np.load(path) as z:
            return z["rows"], z["probs"], z["classes"]

    def heldout_probs(self, n_classes: int, *, split: str = "test", step: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """(dataset rows, probabilities over all ``n_classes`` dataset classes) of the held-out
        ``split`` at ``step`` (default: the latest evaluation that has them); classes absent from
        train get 0. None when the run has no such file (no evaluation yet, or an old run)."""
        steps = self.eval_steps() if step is None else [step]
        for st in reversed(steps):
            kept = self.model_probs(st, split)
            if kept is not None:
                rows, probs, classes = kept
                full = np.zeros((len(rows), n_classes), np.float32)
                full[:, classes] = probs
                return rows, full
        return None


class Ledger:
    """The count of a run's rows its writer has stored, rewritten in place after every write.

    One fixed-width line, overwritten at offset 0: it takes its disk blocks once, when the run
    starts, so it can still be updated on a disk that has filled up since. Before a write it notes
    the rows in flight, after the commit it adds them: a reader (the fault-injection tests) can
    tell rows stored by the worker from rows lost, even after a ``kill -9`` between the two.

    It counts the run's rows, not one process's writes: a ledger opened on a run that has one
    already goes on from its counts (a writer that restarted — the app applying a Ray run's
    reports, say — keeps counting rather than starting again at 0). ``counts`` sets some of them
    from the store itself; a write of that kind left pending is then settled.
    """

    KEYS = ("metrics", "predictions", "pending_metrics", "pending_predictions")

    def __init__(self, files: RunFiles, *, counts: Mapping[str, int] | None = None) -> None:
        files.folder.mkdir(parents=True, exist_ok=True)
        held = files.ledger() or {}
        self.counts = {k: int(held.get(k, 0)) for k in self.KEYS}
        for kind, n in (counts or {}).items():
            self.counts[kind], self.counts[f"pending_{kind}"] = int(n), 0
        self._fd = os.open(files.ledger_path, os.O_RDWR | os.O_CREAT, 0o644)
        self._put()

    def begin(self, kind: str, n: int) -> None:
        self.counts[f"pending_{kind}"] = int(n)
        self._put()

    def commit(self, kind: str) -> None:
        self.counts[kind] += self.counts[f"pending_{kind}"]
        self.counts[f"pending_{kind}"] = 0
        self._put()

    def _put(self) -> None:
        if self._fd < 0:
            return  # closed: its number may belong to another file by now
        line = " ".join(f"{k} {v:>12d}" for k, v in self.counts.items()) + "\n"
        with contextlib.suppress(OSError):  # never fail a run over its ledger
            os.pwrite(self._fd, line.encode(), 0)

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
