"""The relay: the mailbox between workers on Ray nodes and the app, and the owner of their tasks.

One named, detached Ray actor per cluster (``gapscope-relay-v2`` in the ``gapscope`` namespace,
no CPU of its own), shared by every app (home) that uses the cluster; the app reaches it through a
``RelayClient``::

    relay = RelayClient(ray, home_key(store))      # creates the actor, or finds it after a restart
    relay.launch(run_id, config, dataset_ref, options, scratch_home)
    reply = relay.drain(acks={run_id: last_seq_applied}, limit=200)
    relay.request_stop(run_id)                     # answered at once, whatever the event backlog

Two threads serve it (Ray concurrency groups). The **default** one takes the events workers post
(numbered; held in order until the app acknowledges them), launches tasks and answers drains. The
**control** one takes what must not wait behind a backlog of events: stop requests and the
workers' stop polls, heartbeats, cancels. A worker polls its stop flag every half second from the
control thread, so a stop reaches it within a second even while thousands of its events wait to
be applied.

The relay launches the tasks, so it owns them: a run outlives the app that started it, and a
restarted app finds the relay by name and goes on draining. A task cancelled by force cannot clear
its scratch folder on its node; when it has ended, ``clean`` runs a small task on that node that
does (the worker tells the relay its node and folders when it starts).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.runners.ray.connect import NAMESPACE, error_text

RELAY_NAME = "gapscope-relay-v2"  # the version changes when the relay's methods do
CONTROL = "control"  # the concurrency group of calls that never wait behind events


def control(method: Any) -> Any:
    """``method`` of a relay actor handle, run by the relay's control thread."""
    return method.options(concurrency_group=CONTROL)


@dataclass
class Mailbox:
    """One run's events at the relay: ``ready`` in order and not yet acknowledged; ``early``
    arrived ahead of a gap."""

    ref: Any = None
    next_seq: int = 0
    ready: list[tuple[int, str, tuple]] = field(default_factory=list)
    early: dict[int, tuple[int, str, tuple]] = field(default_factory=dict)
    stop: bool = False
    beat: float | None = None
    ended: str | None = None  # the app's own final word (a cancelled task may not claim any more)
    done: bool = False
    error: str | None = None
    node: str | None = None  # the node its task runs on, and its scratch folders there
    scratch: list[str] = field(default_factory=list)


class Relay:
    """The actor's class (``ray.remote`` is applied when a ``RelayClient`` creates it)."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, int], Mailbox] = {}
        self._remote: dict[Any, Any] = {}
        self._cleaning: list[Any] = []
        self._lock = threading.Lock()  # two threads: the default group's and the control group's

    def _box(self, home: str, run_id: int) -> Mailbox:
        return self.runs.setdefault((home, int(run_id)), Mailbox())

    def _remote_fn(self, fn: Callable[..., Any]) -> Any:
        import ray

        if fn not in self._remote:
            self._remote[fn] = ray.remote(max_retries=0, max_calls=1)(fn)  # a run never reruns; one worker each
        return self._remote[fn]

    # ------------------------------------------------------------------ the default thread: events
    def launch(self, home: str, run_id: int, config: dict, dataset: list, options: dict, node_home: str | None, task: Any) -> None:
        """Start ``run_id``'s task (``options``: its resources, and the launching app's runtime_env,
        so a relay started by an older app still runs this app's code)."""
        import ray

        from core.runners.ray.task import train_task

        remote = self._remote_fn(task or train_task)
        me = ray.get_runtime_context().current_actor
        with self._lock:
            box = self._box(home, run_id)
            box.ref = remote.options(name=f"gapscope-run-{run_id}", **options).remote(me, home, run_id, config, dataset[0], node_home)

    def post(self, home: str, run_id: int, seq: int, kind: str, args: tuple) -> None:
        """Hold event ``seq`` of ``run_id``; events become ready in order, each number once."""
        with self._lock:
            box = self._box(home, run_id)
            if int(seq) < box.next_seq:
                return  # sent again: it is ready (or acknowledged) already
            box.early[int(seq)] = (int(seq), kind, args)
            while box.next_seq in box.early:
                box.ready.append(box.early.pop(box.next_seq))
                box.next_seq += 1

    def claim(self, home: str, run_id: int, seq: int, kind: str, args: tuple) -> str | None:
        """Post the worker's claim; return the app's final word if it has ended the run already."""
        self.post(home, run_id, seq, kind, args)
        with self._lock:
            return self._box(home, run_id).ended

    def drain(self, home: str, acks: dict[int, int], limit: int | None = None) -> dict[str, Any]:
        """Drop the events the app acknowledged; return, for each run of ``home``: its first
        ``limit`` events in order and how many it holds, its last heartbeat (this actor's clock),
        whether its task has ended and with what error, and whether the app cancelled it.
        ``now`` is this actor's clock, so the app needs no synchronised clocks."""
        import ray

        with self._lock:
            for run_id, seq in acks.items():
                box = self.runs.get((home, int(run_id)))
                if box is not None:
                    box.ready = [e for e in box.ready if e[0] > seq]
            mine = {run_id: box for (h, run_id), box in self.runs.items() if h == home}
            pending = [box.ref for box in mine.values() if box.ref is not None and not box.done]
            if pending:
                finished = set(ray.wait(pending, num_returns=len(pending), timeout=0)[0])
                for box in mine.values():
                    if box.ref in finished:
                        box.done = True
                        try:
                            ray.get(box.ref)
                        except Exception as err:
                            box.error = error_text(err)
            if self._cleaning:
                self._cleaning = ray.wait(self._cleaning, num_returns=len(self._cleaning), timeout=0)[1]
            runs = {
                run_id: {
                    "events": list(box.ready[:limit]),
                    "held": len(box.ready),
                    "beat": box.beat,
                    "done": box.done,
                    "error": box.error,
                    "cancelled": box.ended is not None,
                    "launched": box.ref is not None,
                }
                for run_id, box in mine.items()
            }
        return {"now": time.time(), "runs": runs}

    def clean(self, home: str, run_id: int) -> bool:
        """Clear the scratch folders of ``run_id``'s ended task on its node (a task cancelled by
        force, or a process that died, cannot); False if the relay does not know where they are."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from core.runners.ray.task import clean_scratch

        with self._lock:
            box = self.runs.get((home, int(run_id)))
            if box is None or box.node is None or not box.scratch:
                return False
            node, folders = box.node, list(box.scratch)
            strategy = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
            self._cleaning.append(self._remote_fn(clean_scratch).options(num_cpus=0, scheduling_strategy=strategy).remote(folders))
        return True

    def forget(self, home: str, run_id: int) -> None:
        with self._lock:
            self.runs.pop((home, int(run_id)), None)

    # ------------------------------------------------------------------ the control thread
    def started(self, home: str, run_id: int, node: str, scratch: list[str]) -> bool:
        """The worker's task began on ``node`` with these scratch folders; return whether a stop
        was asked for already."""
        with self._lock:
            box = self._box(home, run_id)
            box.node, box.scratch = node, list(scratch)
            return box.stop

    def stop_requested(self, home: str, run_id: int) -> bool:
        with self._lock:
            return self._box(home, run_id).stop

    def request_stop(self, home: str, run_id: int) -> None:
        with self._lock:
            self._box(home, run_id).stop = True

    def beat(self, home: str, run_id: int) -> bool:
        """Note the worker's heartbeat; return whether a stop was asked for."""
        with self._lock:
            box = self._box(home, run_id)
            box.beat = time.time()
            return box.stop

    def cancel(self, home: str, run_id: int, status: str) -> None:
        """End ``run_id``'s task by force: the app has written ``status`` for it."""
        import ray

        with self._lock:
            box = self._box(home, run_id)
            box.ended, box.stop = status, True
            ref = box.ref if not box.done else None
        if ref is not None:
            with contextlib.suppress(Exception):  # already ended: nothing to cancel
                ray.cancel(ref, force=True)

    def ping(self) -> float:
        return time.time()


class RelayClient:
    """The app's handle on the relay, for the runs of one home (``core.runners.ray.connect.home_key``).

    Calls that change what a worker does (stop, cancel) go to the relay's control thread and are
    answered at once; ``drain`` waits its turn behind the events workers posted before it.
    """

    def __init__(self, ray: Any, home: str, *, timeout_s: float = 60.0) -> None:
        self.ray, self.home, self.timeout_s = ray, home, timeout_s
        self.actor = (
            ray.remote(concurrency_groups={CONTROL: 1})(Relay)
            .options(name=RELAY_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0, max_restarts=0)
            .remote()
        )

    def launch(self, run_id: int, config: dict[str, Any], dataset: Any, options: dict[str, Any], node_home: str | None, task: Any) -> None:
        """Start the run's task (``dataset``: an ObjectRef, passed inside a list so the relay hands
        the reference on rather than the data)."""
        ref = self.actor.launch.remote(self.home, run_id, config, [dataset], options, node_home, task)
        self.ray.get(ref, timeout=120)

    def drain(self, acks: dict[int, int] | None = None, limit: int | None = None) -> dict[str, Any]:
        return self.ray.get(self.actor.drain.remote(self.home, dict(acks or {}), limit), timeout=120)

    def request_stop(self, run_id: int) -> None:
        self.ray.get(control(self.actor.request_stop).remote(self.home, run_id), timeout=self.timeout_s)

    def cancel(self, run_id: int, status: str) -> None:
        self.ray.get(control(self.actor.cancel).remote(self.home, run_id, str(status)), timeout=self.timeout_s)

    def clean(self, run_id: int) -> None:
        self.actor.clean.remote(self.home, run_id)

    def forget(self, run_id: int) -> None:
        self.actor.forget.remote(self.home, run_id)
