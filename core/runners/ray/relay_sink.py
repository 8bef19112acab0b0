"""The worker's sink on a Ray node: every write goes to the relay, never to SQLite.

    sink = RelaySink(relay, home, run_id, config, scratch=node_home)   # in the task (core.runners.ray.task)
    status = run_with_sink(sink, load_dataset)                         # the worker of a local run

Each call becomes a numbered event (``core.runners.ray.protocol.Kind``) posted to the relay in the
order it was made; only the claim and the final status wait for the relay's answer. Files are
written to a scratch folder on the node and sent when they change: on every heartbeat (about every
2 s) and at the end. The stop flag and heartbeats go to the relay's control thread
(``core.runners.ray.relay``), so a stop is seen within a poll (0.5 s) even when the relay holds
a backlog of this run's events.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.runners.ray.protocol import Kind
from core.runners.ray.relay import control
from core.store.artifacts import RunFiles
from core.store.status import RunStatus


class RelaySink:
    """The ``RunSink`` of a worker on a Ray node (see the module's docstring)."""

    def __init__(self, relay: Any, home: str, run_id: int, config: dict[str, Any], *, scratch: str | Path) -> None:
        self.relay, self.home, self.run_id = relay, home, int(run_id)
        self._config = dict(config)
        self.files = RunFiles(run_id, home=scratch)
        self._seq = 0
        self._lock = threading.Lock()  # numbers are handed out in the order the calls are sent
        self._files_lock = threading.Lock()
        self._sent: dict[str, tuple[int, int, int]] = {}
        self._log_sent = 0
        self._last: Any = None
        #: Written as ``node.json`` (with the final status) just before the final status is sent,
        #: so a run that has ended has it: where it ran, the SQLite files its process opened.
        self.node: dict[str, Any] | None = None
        #: Rewrites a failure's message before it is sent: a run of several processes names the
        #: child rank that died (``core.runners.ranks``) before the error rank 0 saw of it.
        self.explain: Callable[[str], str] | None = None

    def _numbered(self, method: Any, *args: Any) -> Any:
        """Call relay ``method`` with the next sequence number (numbers go out in call order)."""
        with self._lock:
            seq, self._seq = self._seq, self._seq + 1
            self._last = method.remote(self.home, self.run_id, seq, *args)
            return self._last

    def _send(self, kind: Kind, *args: Any) -> Any:
        return self._numbered(self.relay.post, kind.value, args)

    def announce(self, scratch: Sequence[str | Path]) -> bool:
        """Tell the relay this task's node and scratch folders (it clears them if the task is
        cancelled by force); return whether a stop was asked for already."""
        import ray

        node = ray.get_runtime_context().get_node_id()
        return bool(ray.get(control(self.relay.started).remote(self.home, self.run_id, node, [str(p) for p in scratch])))

    def config(self) -> dict[str, object]:
        return dict(self._config)

    def claim(self, pid: int, pid_started: float | None) -> RunStatus | None:
        import ray

        ended = ray.get(self._numbered(self.relay.claim, Kind.CLAIM.value, (pid, pid_started)))
        return None if ended is None else RunStatus(ended)

    def stop_requested(self) -> bool:
        import ray

        return bool(ray.get(control(self.relay.stop_requested).remote(self.home, self.run_id)))

    def heartbeat(self) -> bool:
        import ray

        self.send_files()
        return bool(ray.get(control(self.relay.beat).remote(self.home, self.run_id)))

    def progress(self, message: str, *, progress: float | None = None) -> None:
        self._send(Kind.PROGRESS, message, progress)

    def add_metrics(self, step: int, split: str, values: Any, *, epoch: float | None = None) -> None:
        self._send(Kind.METRICS, int(step), split, {k: (None if v is None else float(v)) for k, v in values.items()}, epoch)

    def add_predictions(self, step: int, split: str, items: np.ndarray, labels: np.ndarray, pred: np.ndarray, conf: np.ndarray) -> None:
        arrays = (np.asarray(items, np.int64), np.asarray(labels, np.int64), np.asarray(pred, np.int64), np.asarray(conf, np.float64))
        self._send(Kind.PREDICTIONS, int(step), split, *arrays)

    def finish(self, status: RunStatus, message: str) -> None:
        import ray

        if self.node is not None:
            with contextlib.suppress(OSError):
                self.files.write_json("node.json", {**self.node, "status": RunStatus(status).value})
        if self.explain is not None and status == RunStatus.FAILED:
            message = self.explain(message)
        self.send_files()
        ray.get(self._send(Kind.FINISH, RunStatus(status).value, message))  # everything before it is delivered first

    def send_files(self) -> None:
        """Send what changed in the run's scratch folder since the last call: whole files, and the
        log from where the last call left it."""
        folder = self.files.folder
        with self._files_lock:
            if not folder.is_dir():
                return
            for path in sorted(folder.rglob("*")):
                rel = path.relative_to(folder).as_posix()
                if not path.is_file() or path.name.startswith(".") or rel == self.files.ledger_path.name:
                    continue  # temporary files of atomic writes; the ledger is the app's
                try:
                    if rel == self.files.log_path.name:
                        self._send_log(path)
                    else:
                        self._send_file(path, rel)
                except FileNotFoundError:  # replaced while we looked: the next call sends it
                    continue

    def _send_log(self, path: Path) -> None:
        size = path.stat().st_size
        if size > self._log_sent:
            with open(path, "rb") as fh:
                fh.seek(self._log_sent)
                chunk = fh.read(size - self._log_sent)
            self._send(Kind.LOG, self._log_sent, chunk)
            self._log_sent += len(chunk)

    def _send_file(self, path: Path, rel: str) -> None:
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        if self._sent.get(rel) != key:
            self._send(Kind.FILE, rel, path.read_bytes())
            self._sent[rel] = key

    def flush(self) -> None:
        """Send the files, and wait until the relay has everything sent so far."""
        import ray

        self.send_files()
        if self._last is not None:
            ray.get(self._last)
