"""Carries out a drain's actions (``core.runners.ray.drain``): on the store, and through the
relay for what only the cluster can do. It is also the runner's memory between drains.

    executor = Executor(store, cluster=relay_client, end=runner._end)
    reply = relay.drain(executor.acks(), limit=200)
    executor.sent_acks()                                  # the relay has them
    actions = decide(states, mail, executor.past(), now=…, relay_now=reply["now"], limits=…)
    marked = executor.carry_out(actions, rows)            # runs the app ended itself

Events are applied in order through each run's ``AppSink`` (``core.runners.ray.protocol``). When
one fails, the rest of its run's events wait for the next drain, and the failure is counted
against that event (the decision fails the run once it has failed ``MAX_APPLY_ATTEMPTS`` times);
a busy store (``StoreBusy``) is the store's state, not the event's, and is not counted. What was
applied is acknowledged with the next drain.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from core.runners.ray.connect import error_text
from core.runners.ray.drain import Ack, Action, Apply, Beat, Cancel, CleanScratch, End, Failure, Forget, ForwardStop, Past
from core.runners.ray.protocol import AppSink, apply_event
from core.store.database import Store, StoreBusy
from core.store.rows import RunRow
from core.store.status import WORKING, RunStatus


class Cluster(Protocol):
    """What only the cluster can do for a run (``core.runners.ray.relay.RelayClient``)."""

    def request_stop(self, run_id: int) -> None: ...

    def cancel(self, run_id: int, status: str) -> None: ...

    def clean(self, run_id: int) -> None: ...

    def forget(self, run_id: int) -> None: ...


class Executor:
    """See the module's docstring. ``end(row, status, why)`` writes the app's final word for a
    run (``QueueRunner._end``: with the log's last lines, even on a full disk)."""

    def __init__(
        self, store: Store, cluster: Cluster, end: Callable[[RunRow, RunStatus, str], bool], *, lock_patience_s: float = 5.0
    ) -> None:
        self.store, self.cluster, self._end = store, cluster, end
        self.lock_patience_s = lock_patience_s
        self.sinks: dict[int, AppSink] = {}
        self.applied: dict[int, int] = {}
        self.failures: dict[int, Failure] = {}
        self.stops_sent: set[int] = set()
        self._acks: dict[int, int] = {}
        self._sent: dict[int, int] = {}

    # ------------------------------------------------------------------ between drains
    def past(self) -> Past:
        return Past(dict(self.applied), dict(self.failures), frozenset(self.stops_sent))

    def acks(self) -> dict[int, int]:
        """The last event number done per run, to send with the next drain."""
        self._sent = dict(self._acks)
        return dict(self._sent)

    def sent_acks(self) -> None:
        """The relay has the acknowledgements ``acks`` returned: drop them."""
        for run_id, seq in self._sent.items():
            if self._acks.get(run_id) == seq:
                del self._acks[run_id]
        self._sent = {}

    def forward_stop(self, run_id: int) -> None:
        """Tell the relay that ``run_id`` should stop (its worker polls the flag); retried by the
        next drain if the relay cannot be told now."""
        try:
            self.cluster.request_stop(run_id)
        except Exception as err:
            print(f"run {run_id}: could not forward the stop to the relay ({error_text(err)}); retrying", file=sys.stderr)
            return
        self.stops_sent.add(run_id)

    # ------------------------------------------------------------------ one drain
    def carry_out(self, actions: Sequence[Action], rows: Mapping[int, RunRow]) -> list[int]:
        """Carry ``actions`` out in order; return the runs this app ended itself."""
        marked: list[int] = []
        stuck: set[int] = set()  # runs whose event would not apply: their later events wait
        for act in actions:
            match act:
                case Apply() | Ack() if act.run_id in stuck:
                    continue
                case Apply():
                    if not self._apply(act):
                        stuck.add(act.run_id)
                case Ack():
                    self._done(act.run_id, act.seq)
                case End():
                    if self._end(rows[act.run_id], act.status, act.why):
                        marked.append(act.run_id)
                case Beat():
                    self.store.set_run_status(act.run_id, None, only_if=WORKING, heartbeat_at=act.at)
                case ForwardStop():
                    self.forward_stop(act.run_id)
                case Cancel():
                    self._cancel(act.run_id, act.status)
                case CleanScratch():
                    self.cluster.clean(act.run_id)
                case Forget():
                    self._forget(act.run_id)
        return marked

    def _apply(self, act: Apply) -> bool:
        sink = self.sinks.get(act.run_id)
        try:
            if sink is None:
                sink = self.sinks[act.run_id] = AppSink(self.store, act.run_id, lock_patience_s=self.lock_patience_s)
            apply_event(sink, act.seq, act.kind, act.args)
        except StoreBusy as err:  # the store's state, not the event's: wait for the next drain
            print(f"run {act.run_id}: {err}; retrying at the next drain", file=sys.stderr)
            return False
        except Exception as err:
            before = self.failures.get(act.run_id)
            attempts = before.attempts + 1 if before is not None and before.seq == act.seq else 1
            self.failures[act.run_id] = Failure(act.seq, act.kind, attempts, error_text(err))
            print(f"run {act.run_id}: event {act.kind} #{act.seq} did not apply ({error_text(err)}; attempt {attempts})", file=sys.stderr)
            return False
        self.failures.pop(act.run_id, None)
        self._done(act.run_id, act.seq)
        return True

    def _done(self, run_id: int, seq: int) -> None:
        self.applied[run_id] = max(seq, self.applied.get(run_id, -1))
        self._acks[run_id] = self.applied[run_id]
        failed = self.failures.get(run_id)
        if failed is not None and failed.seq <= seq:
            del self.failures[run_id]

    def _cancel(self, run_id: int, status: RunStatus) -> None:
        try:
            self.cluster.cancel(run_id, status.value)
        except Exception as err:  # the relay is unreachable: the run is ended here; its task is left
            print(f"run {run_id}: could not cancel its Ray task ({error_text(err)})", file=sys.stderr)

    def _forget(self, run_id: int) -> None:
        self.cluster.forget(run_id)
        for memory in (self.applied, self.failures, self._acks):
            memory.pop(run_id, None)
        self.stops_sent.discard(run_id)
        sink = self.sinks.pop(run_id, None)
        if sink is not None:
            sink.close()
