"""What the app does with one drain of the relay: a pure decision, no Ray and no store.

    actions = decide(runs, mail, past, now=time.time(), relay_now=reply["now"], limits=Limits(grace_s=10))

``runs``: the stored state (``RunState``) of this runner's working runs and of every run the
relay holds mail for; ``mail``: what the relay returned for each run (``Mail``); ``past``: what
the runner remembers from earlier drains (``Past``: the last event applied per run, the event
that failed to apply and how often, the stops already forwarded). The result is a list of
actions, carried out in order by ``core.runners.ray.executor``:

- ``Apply`` an event, or ``Ack`` one without applying it: sent again (its number was applied),
  or it writes rows (``core.runners.ray.protocol.HANDLERS``) for a run that has ended — nothing is
  stored for a run after its final status, whoever wrote it. Files and log chunks still land in
  its folder.
- An event that has failed to apply ``MAX_APPLY_ATTEMPTS`` times is acknowledged unapplied, and
  its run is cancelled and **failed** with the reason, rather than retried forever.
- ``ForwardStop`` a stop asked for in the store that the relay has not been told of.
- ``Cancel`` and ``End`` a run its worker cannot end itself: a stop not honoured within
  ``grace_s`` → stopped; no heartbeat for ``stale_after_s`` → failed; not begun within
  ``start_timeout_s`` → failed; a task that ended without the worker's final status → failed;
  a run the relay does not know (the relay or the cluster restarted) → failed. A run whose
  worker's final status is in the batch is left to it.
- ``Beat``: the run's heartbeat as the relay saw it (on this machine's clock).
- ``CleanScratch`` of a task that was cancelled or died, and ``Forget`` a run whose task has
  ended and whose mail is all applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.runners.ray.protocol import Kind, as_event, writes_rows
from core.store.rows import RunRow
from core.store.status import WORKING, RunStatus

#: An event that failed to apply this many times fails its run instead of being tried again.
MAX_APPLY_ATTEMPTS = 5

NOT_KNOWN = "the Ray cluster no longer knows this run (its relay or the cluster restarted)"


# ---------------------------------------------------------------------- what the decision reads


@dataclass(frozen=True)
class RunState:
    """What the decision needs of a run's stored row."""

    status: RunStatus
    stop_requested: bool = False
    stop_requested_at: float | None = None
    started_at: float | None = None

    @classmethod
    def of(cls, row: RunRow) -> RunState:
        return cls(row.stored_status, row.stop_requested, row.stop_requested_at, row.started_at)

    @property
    def working(self) -> bool:
        return self.status in WORKING


@dataclass(frozen=True)
class Mail:
    """What the relay returned for one run: its next events in order, how many it holds, its last
    heartbeat (the relay's clock), whether its task has ended (and with what error), whether the
    app cancelled it."""

    events: tuple[tuple[int, str, tuple], ...] = ()
    held: int = 0
    beat: float | None = None
    done: bool = False
    error: str | None = None
    cancelled: bool = False
    launched: bool = True  # False: a mailbox without a task (a stop asked for a run the relay had let go)

    @classmethod
    def of(cls, reply: Mapping[str, Any]) -> Mail:
        events = tuple(as_event(e) for e in reply.get("events", ()))
        beat = reply.get("beat")
        return cls(
            events,
            int(reply.get("held", len(events))),
            None if beat is None else float(beat),
            bool(reply.get("done")),
            reply.get("error"),
            bool(reply.get("cancelled")),
            bool(reply.get("launched", True)),
        )

    @property
    def complete(self) -> bool:
        """This batch is all the relay holds for the run."""
        return self.held <= len(self.events)


@dataclass(frozen=True)
class Failure:
    """Event ``seq`` of a run failed to apply ``attempts`` times; the last time with ``error``."""

    seq: int
    kind: str
    attempts: int
    error: str


@dataclass(frozen=True)
class Past:
    """What the runner remembers from earlier drains."""

    applied: Mapping[int, int] = field(default_factory=dict)  # run → the last event number applied
    failures: Mapping[int, Failure] = field(default_factory=dict)  # run → its event that would not apply
    stops_sent: frozenset[int] = frozenset()  # runs whose stop the relay has been told of


@dataclass(frozen=True)
class Limits:
    grace_s: float = 10.0
    stale_after_s: float = 60.0
    start_timeout_s: float = 600.0
    max_attempts: int = MAX_APPLY_ATTEMPTS


# ---------------------------------------------------------------------- what it decides


@dataclass(frozen=True)
class Apply:
    run_id: int
    seq: int
    kind: str
    args: tuple


@dataclass(frozen=True)
class Ack:
    """Acknowledge events up to ``seq`` without applying this one."""

    run_id: int
    seq: int


@dataclass(frozen=True)
class End:
    """The app's final word for a run its worker cannot end (a compare-and-set out of WORKING)."""

    run_id: int
    status: RunStatus
    why: str


@dataclass(frozen=True)
class Cancel:
    run_id: int
    status: RunStatus


@dataclass(frozen=True)
class ForwardStop:
    run_id: int


@dataclass(frozen=True)
class Beat:
    run_id: int
    at: float  # this machine's clock


@dataclass(frozen=True)
class CleanScratch:
    run_id: int


@dataclass(frozen=True)
class Forget:
    run_id: int


Action = Apply | Ack | End | Cancel | ForwardStop | Beat | CleanScratch | Forget


def decide(
    runs: Mapping[int, RunState], mail: Mapping[int, Mail], past: Past, *, now: float, relay_now: float, limits: Limits
) -> list[Action]:
    """The actions for one drain (see the module's docstring), run by run in id order."""
    offset = now - relay_now  # this machine's clock minus the relay's
    ids = set(mail) | {run_id for run_id, state in runs.items() if state.working}
    actions: list[Action] = []
    for run_id in sorted(ids):
        actions += _decide_run(run_id, runs.get(run_id), mail.get(run_id), past, now=now, offset=offset, limits=limits)
    return actions


def _decide_run(
    run_id: int, state: RunState | None, box: Mail | None, past: Past, *, now: float, offset: float, limits: Limits
) -> list[Action]:
    out: list[Action] = []
    working = state is not None and state.working
    if state is not None and working:
        if state.stop_requested and run_id not in past.stops_sent and box is not None:
            out.append(ForwardStop(run_id))
        finishing = box is not None and _finishing(run_id, box, past, limits)
        out += [] if finishing else _verdict(run_id, state, box, now=now, offset=offset, limits=limits)
    ended = not working or any(isinstance(a, End) for a in out)
    if box is None:
        return out
    events = _events(run_id, box, past, ended=ended, known=state is not None, limits=limits)
    out += events
    ended = ended or any(isinstance(a, End) for a in events)
    applying = any(isinstance(a, Apply) for a in events)
    if (box.done or not box.launched) and ended and not applying and box.complete:  # everything it sent is in: let it go
        if box.done and (box.cancelled or box.error):
            out.append(CleanScratch(run_id))
        out.append(Forget(run_id))
    return out


def _fresh(run_id: int, box: Mail, past: Past) -> list[tuple[int, str, tuple]]:
    """The batch's events in order, each number once, none applied before."""
    last = past.applied.get(run_id, -1)
    out = []
    for event in sorted(box.events, key=lambda e: e[0]):
        if event[0] > last:
            out.append(event)
            last = event[0]
    return out


def _poisoned(run_id: int, seq: int, past: Past, limits: Limits) -> Failure | None:
    fail = past.failures.get(run_id)
    return fail if fail is not None and fail.seq == seq and fail.attempts >= limits.max_attempts else None


def _finishing(run_id: int, box: Mail, past: Past, limits: Limits) -> bool:
    """The worker's final status is in this batch, to be applied: the run is its to end."""
    return any(kind == Kind.FINISH.value and not _poisoned(run_id, seq, past, limits) for seq, kind, _ in _fresh(run_id, box, past))


def _verdict(run_id: int, state: RunState, box: Mail | None, *, now: float, offset: float, limits: Limits) -> list[Action]:
    """Whether a working run's task is alive, and its heartbeat; or how the app ends it."""
    if box is None:
        return [End(run_id, RunStatus.FAILED, NOT_KNOWN)]
    if box.done:  # ended without its final status; wait until what it sent is applied
        why = f"the Ray task ended without the worker's final status: {box.error or 'it returned early'}"
        return [] if box.events else [End(run_id, RunStatus.FAILED, why)]
    if state.status == RunStatus.STOPPING and now - (state.stop_requested_at or now) > limits.grace_s:
        why = f"stopped (the Ray task was cancelled {limits.grace_s:.0f} s after the stop request)"
        return [Cancel(run_id, RunStatus.STOPPED), End(run_id, RunStatus.STOPPED, why)]
    if box.beat is None:  # launched, not begun: no node had room yet, or its environment is being set up
        if now - (state.started_at or now) > limits.start_timeout_s:
            why = f"the Ray task did not start within {limits.start_timeout_s:.0f} s (does a node have the resources it asks for?)"
            return [Cancel(run_id, RunStatus.FAILED), End(run_id, RunStatus.FAILED, why)]
        return [Beat(run_id, now)]  # waiting, not lost: readers must not show it as lost
    beat = box.beat + offset
    if now - beat > limits.stale_after_s:
        why = f"no heartbeat for {now - beat:.0f} s: the Ray task was lost (its node died?) and was cancelled"
        return [Cancel(run_id, RunStatus.FAILED), End(run_id, RunStatus.FAILED, why)]
    return [Beat(run_id, beat)]


def _events(run_id: int, box: Mail, past: Past, *, ended: bool, known: bool, limits: Limits) -> list[Action]:
    """Apply or acknowledge each event of the batch; fail the run over an event that will not apply."""
    last = past.applied.get(run_id, -1)
    stale = [seq for seq, _, _ in box.events if seq <= last]
    out: list[Action] = [Ack(run_id, max(stale))] if stale else []  # applied before, sent again
    for seq, kind, args in _fresh(run_id, box, past):  # a number twice in the batch: applied once
        fail = _poisoned(run_id, seq, past, limits)
        if not known or (ended and writes_rows(kind)):
            out.append(Ack(run_id, seq))  # nothing stored for a run after its final status
        elif fail is not None:
            out.append(Ack(run_id, seq))
            if not ended:
                why = (
                    f"the app could not store what the cluster sent for this run ({fail.kind} #{seq}) after "
                    f"{fail.attempts} attempts: {fail.error}"
                )
                out += [Cancel(run_id, RunStatus.FAILED), End(run_id, RunStatus.FAILED, why)]
                ended = True
        else:
            out.append(Apply(run_id, seq, kind, args))
            ended = ended or kind == Kind.FINISH.value
    return out
