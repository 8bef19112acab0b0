"""The Ray runner's drain without Ray: the pure decision (``core.runners.ray.drain.decide``), and
the executor applying its actions to a real store with a stand-in for the relay."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.demos import load_digits_8x8
from core.runners.queue import QueueRunner
from core.runners.ray.drain import (
    MAX_APPLY_ATTEMPTS,
    NOT_KNOWN,
    Ack,
    Apply,
    Beat,
    Cancel,
    CleanScratch,
    End,
    Failure,
    Forget,
    ForwardStop,
    Limits,
    Mail,
    Past,
    RunState,
    decide,
)
from core.runners.ray.executor import Executor
from core.runners.ray.protocol import HANDLERS, Kind
from core.store import RunFiles, RunStatus

NOW = 1_000_000.0
LIMITS = Limits(grace_s=10.0, stale_after_s=60.0, start_timeout_s=600.0)
RUNNING = RunState(RunStatus.RUNNING, started_at=NOW - 100)


def _metrics(seq: int, step: int = 10) -> tuple[int, str, tuple]:
    return (seq, "metrics", (step, "train", {"loss": 0.5}, 0.1))


def _file(seq: int, name: str = "evals/10.json") -> tuple[int, str, tuple]:
    return (seq, "file", (name, b"{}"))


def _finish(seq: int, status: str = "stopped") -> tuple[int, str, tuple]:
    return (seq, "finish", (status, "stopped at step 40"))


def _mail(*events, beat: float | None = NOW - 1, **kw) -> Mail:
    return Mail(events=tuple(events), held=kw.pop("held", len(events)), beat=beat, **kw)


def _decide(runs, mail, past=None, *, now=NOW, relay_now=NOW, limits=LIMITS):
    return decide(runs, mail, past or Past(), now=now, relay_now=relay_now, limits=limits)


def test_one_table_says_how_every_kind_is_applied():
    assert set(HANDLERS) == set(Kind)
    assert {k for k, h in HANDLERS.items() if not h.rows} == {Kind.FILE, Kind.LOG}  # files still land after the end


def test_ordinary_events_are_applied_in_order_and_the_heartbeat_stored():
    events = [(0, "claim", (11, None)), (1, "progress", ("loading data", None)), _metrics(2), _file(3)]
    actions = _decide({1: RUNNING}, {1: _mail(*reversed(events), beat=NOW - 5)}, relay_now=NOW - 2)
    # the relay's clock runs 2 s behind this one: its heartbeat is moved onto this clock
    assert actions == [Beat(1, NOW - 3), *(Apply(1, seq, kind, args) for seq, kind, args in events)]


def test_nothing_is_stored_for_a_run_after_its_final_status():
    stopped = RunState(RunStatus.STOPPED, stop_requested=True, stop_requested_at=NOW - 30)
    actions = _decide({1: stopped}, {1: _mail(_metrics(5), _file(6), (7, "log", (0, b"x")), (8, "progress", ("x", None)))})
    assert actions == [Ack(1, 5), Apply(1, 6, "file", ("evals/10.json", b"{}")), Apply(1, 7, "log", (0, b"x")), Ack(1, 8)]
    # the worker's own final word in the batch: rows after it are dropped too
    actions = _decide({2: RUNNING}, {2: _mail(_metrics(0), _finish(1), _metrics(2), _file(3))})
    assert [type(a).__name__ for a in actions] == ["Apply", "Apply", "Ack", "Apply"] and actions[2] == Ack(2, 2)


def test_a_stop_is_forwarded_once_and_cancelled_after_its_grace_unless_the_worker_ends_the_run():
    stopping = RunState(RunStatus.STOPPING, stop_requested=True, stop_requested_at=NOW - 3, started_at=NOW - 100)
    assert _decide({1: stopping}, {1: _mail()}) == [ForwardStop(1), Beat(1, NOW - 1)]
    assert _decide({1: stopping}, {1: _mail()}, Past(stops_sent=frozenset({1}))) == [Beat(1, NOW - 1)]
    assert _decide({1: stopping}, {}) == [End(1, RunStatus.FAILED, NOT_KNOWN)]  # no relay to tell
    late = RunState(RunStatus.STOPPING, stop_requested=True, stop_requested_at=NOW - 11, started_at=NOW - 100)
    past = Past(stops_sent=frozenset({1}))
    actions = _decide({1: late}, {1: _mail(_metrics(4), _file(5))}, past)
    assert actions[:2] == [Cancel(1, RunStatus.STOPPED), End(1, RunStatus.STOPPED, actions[1].why)]
    assert "cancelled 10 s after the stop request" in actions[1].why
    assert actions[2:] == [Ack(1, 4), Apply(1, 5, "file", ("evals/10.json", b"{}"))]  # its rows after the cancel: dropped
    # its own "stopped" is in the batch: the worker honoured the stop, nothing is cancelled
    actions = _decide({1: late}, {1: _mail(_metrics(4), _finish(5))}, past)
    assert actions == [Apply(1, 4, *_metrics(4)[1:]), Apply(1, 5, *_finish(5)[1:])]


def test_an_event_number_is_applied_once():
    batch = _mail(_metrics(3), _metrics(3, step=99), _metrics(4), _file(2))
    actions = _decide({1: RUNNING}, {1: batch}, Past(applied={1: 2}))
    assert actions == [Beat(1, NOW - 1), Ack(1, 2), Apply(1, 3, *_metrics(3)[1:]), Apply(1, 4, *_metrics(4)[1:])]


def test_an_event_that_never_applies_fails_its_run_after_max_attempts():
    batch = _mail(_file(5, "../escape"), _metrics(6), _file(7))
    tried = Failure(5, "file", MAX_APPLY_ATTEMPTS - 1, "ValueError: refusing a file outside the run's folder: '../escape'")
    assert _decide({1: RUNNING}, {1: batch}, Past(failures={1: tried}))[1] == Apply(1, 5, *_file(5, "../escape")[1:])
    given_up = Failure(5, "file", MAX_APPLY_ATTEMPTS, tried.error)
    actions = _decide({1: RUNNING}, {1: batch}, Past(failures={1: given_up}))
    end = next(a for a in actions if isinstance(a, End))
    assert actions == [Beat(1, NOW - 1), Ack(1, 5), Cancel(1, RunStatus.FAILED), end, Ack(1, 6), Apply(1, 7, *_file(7)[1:])]
    assert (
        end.status == RunStatus.FAILED
        and f"(file #5) after {MAX_APPLY_ATTEMPTS} attempts" in end.why
        and "outside the run's folder" in end.why
    )


def test_tasks_that_end_or_go_quiet_are_ended_by_the_app():
    done = _mail(beat=NOW - 1, done=True, error="WorkerCrashedError: the worker died")
    actions = _decide({1: RUNNING}, {1: done})
    assert actions[0] == End(1, RunStatus.FAILED, actions[0].why) and "WorkerCrashedError" in actions[0].why
    assert actions[1:] == [CleanScratch(1), Forget(1)]  # it died: its node may hold its scratch folder
    # ended, but what it sent is still being applied: wait
    assert _decide({1: RUNNING}, {1: _mail(_metrics(0), done=True)}) == [Apply(1, 0, *_metrics(0)[1:])]
    # no heartbeat for too long; not begun in time; not begun yet; unknown to the relay
    assert _decide({1: RUNNING}, {1: _mail(beat=NOW - 61)})[0] == Cancel(1, RunStatus.FAILED)
    late = RunState(RunStatus.RUNNING, started_at=NOW - 601)
    assert [type(a) for a in _decide({1: late}, {1: _mail(beat=None)})] == [Cancel, End]
    assert _decide({1: RUNNING}, {1: _mail(beat=None)}) == [Beat(1, NOW)]
    assert _decide({1: RUNNING}, {}) == [End(1, RunStatus.FAILED, NOT_KNOWN)]


def test_ended_runs_are_let_go_once_their_mail_is_applied():
    finished = RunState(RunStatus.FINISHED)
    assert _decide({1: finished}, {1: _mail(done=True)}) == [Forget(1)]
    assert _decide({1: finished}, {1: _mail(_file(4), done=True)}) == [Apply(1, 4, *_file(4)[1:])]
    assert _decide({1: finished}, {1: _mail(_file(4), done=True, held=9)})[-1] == Apply(1, 4, *_file(4)[1:])  # more to come
    cancelled = RunState(RunStatus.STOPPED)
    assert _decide({1: cancelled}, {1: _mail(_metrics(3), done=True, cancelled=True)}) == [Ack(1, 3), CleanScratch(1), Forget(1)]
    assert _decide({1: cancelled}, {1: _mail(done=False, cancelled=True)}) == []  # cancelled, not ended yet
    assert _decide({1: finished}, {1: _mail(beat=None, launched=False)}) == [Forget(1)]  # a stop asked for after it was let go
    # mail of a run this store does not hold: dropped, then let go
    assert _decide({}, {7: _mail(_file(0), _metrics(1), done=True)}) == [Ack(7, 0), Ack(7, 1), Forget(7)]


# ---------------------------------------------------------------------- the executor, on a real store


class FakeRelay:
    """What the executor asks of the relay, and the relay's mailbox semantics for one run."""

    def __init__(self) -> None:
        self.events: dict[int, list[tuple[int, str, tuple]]] = {}
        self.stops: list[int] = []
        self.cancelled: list[tuple[int, str]] = []
        self.cleaned: list[int] = []
        self.forgotten: list[int] = []

    def drain(self, acks: dict[int, int]) -> dict[int, Mail]:
        for run_id, seq in acks.items():
            self.events[run_id] = [e for e in self.events.get(run_id, []) if e[0] > seq]
        return {run_id: _mail(*events) for run_id, events in self.events.items() if run_id not in self.forgotten}

    def request_stop(self, run_id: int) -> None:
        self.stops.append(run_id)

    def cancel(self, run_id: int, status: str) -> None:
        self.cancelled.append((run_id, status))

    def clean(self, run_id: int) -> None:
        self.cleaned.append(run_id)

    def forget(self, run_id: int) -> None:
        self.forgotten.append(run_id)


@pytest.fixture
def ray_run(store) -> int:
    """A run the Ray runner has claimed (launched; its worker has not reported yet)."""
    vid = store.save_dataset(load_digits_8x8().dataset, source="demo:digits")
    run_id = store.create_run(vid, {"version_id": vid})
    assert store.claim_next_run(1, runner="ray").id == run_id
    return run_id


def _drain(store, relay: FakeRelay, executor: Executor) -> list[int]:
    mail = relay.drain(executor.acks())
    executor.sent_acks()
    rows = {run_id: store.run(run_id) for run_id in mail}
    actions = decide({i: RunState.of(r) for i, r in rows.items()}, mail, executor.past(), now=NOW, relay_now=NOW, limits=LIMITS)
    return executor.carry_out(actions, rows)


def test_an_event_that_fails_every_time_fails_its_run_and_is_not_tried_forever(store, ray_run, home):
    relay, runner = FakeRelay(), QueueRunner(store)
    executor = Executor(store, relay, runner._end)
    relay.events[ray_run] = [(0, "claim", (4242, None)), _metrics(1), _file(2, "../../escape.bin"), _metrics(3, step=20), _file(4)]
    for _ in range(MAX_APPLY_ATTEMPTS):  # each drain: claim and metrics (once), then the bad file fails again
        assert _drain(store, relay, executor) == []
        assert store.run(ray_run).stored_status == RunStatus.RUNNING
    assert executor.failures[ray_run].attempts == MAX_APPLY_ATTEMPTS
    assert _drain(store, relay, executor) == [ray_run]  # given up: the run fails with the reason
    row = store.run(ray_run)
    assert row.stored_status == RunStatus.FAILED and "after 5 attempts" in row.message and "outside the run's folder" in row.message
    assert relay.cancelled == [(ray_run, "failed")]
    _drain(store, relay, executor)  # everything acknowledged: the file after it was written, no row after the end
    assert relay.events[ray_run] == [] and store.metrics(ray_run).step.tolist() == [10]
    assert (RunFiles(ray_run, home=home).folder / "evals" / "10.json").is_file() and not (home / "escape.bin").exists()


def test_the_ledger_counts_the_runs_rows_after_an_app_restart(store, ray_run, home):
    items = np.arange(5)

    def predictions(seq: int, step: int) -> tuple[int, str, tuple]:
        return (seq, "predictions", (step, "test", items, items % 3, items % 3, np.full(5, 0.9)))

    relay = FakeRelay()
    first = Executor(store, relay, QueueRunner(store)._end)
    relay.events[ray_run] = [(0, "claim", (4242, None)), _metrics(1), predictions(2, 10)]
    _drain(store, relay, first)
    relay.events[ray_run] += [predictions(3, 15)]
    _drain(store, relay, first)  # acknowledges the claim and what came with it; applies the next evaluation
    # the app is killed before its next drain acknowledges that one: a new app is sent it again
    second = Executor(store, relay, QueueRunner(store)._end)
    relay.events[ray_run] += [_metrics(4, step=20), predictions(5, 20), (6, "metrics", (20, "val", {"accuracy": 0.9, "ece": 0.1}, 1.0))]
    _drain(store, relay, second)
    ledger = RunFiles(ray_run, home=home).ledger()
    n_predictions = sum(len(store.predictions(ray_run, step=step)) for step in (10, 15, 20))
    assert ledger == {"metrics": len(store.metrics(ray_run)), "predictions": n_predictions, "pending_metrics": 0, "pending_predictions": 0}
    assert ledger["metrics"] == 4 and n_predictions == 15


def test_a_ledger_opened_again_goes_on_counting(home):
    from core.store.artifacts import Ledger

    files = RunFiles(3, home=home)
    ledger = Ledger(files)
    ledger.begin("metrics", 7)
    ledger.commit("metrics")
    ledger.begin("predictions", 5)  # killed before the commit: pending
    ledger.close()
    ledger.begin("metrics", 1)  # closed: its file descriptor is not written to any more
    again = Ledger(files)
    assert files.ledger() == {"metrics": 7, "predictions": 0, "pending_metrics": 0, "pending_predictions": 5}
    again.begin("metrics", 2)
    again.commit("metrics")
    assert files.ledger()["metrics"] == 9
    again.close()
    Ledger(files, counts={"predictions": 5}).close()  # counted from the store: the pending write is settled
    assert files.ledger() == {"metrics": 9, "predictions": 5, "pending_metrics": 0, "pending_predictions": 0}
