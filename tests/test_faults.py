"""Fault injection: real worker processes and a real store, with the faults done to them for real.

Every test ends by checking the same two things: every row a worker reported storing (its ledger,
``core.store.artifacts.Ledger``) is in the store — no more, no fewer — and no run is left "running".
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from core.data.demos import load_digits_8x8
from core.errors import DataError
from core.runners.local import LocalRunner
from core.runners.processes import same_process
from core.store import RunFiles, Store
from core.store.space import DiskFull, StoreReadOnly
from core.store.status import ACTIVE, WORKING
from core.train.config import RunConfig
from tests.test_runners import _wait_for

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def _cfg(version_id: int, **kw) -> RunConfig:
    return RunConfig(**{"version_id": version_id, "model": "small_cnn", "epochs": 1, "batch_size": 64, "lr": 3e-3, "device": "cpu", **kw})


def _long(version_id: int) -> RunConfig:
    return _cfg(version_id, epochs=1000, eval_every_steps=10)  # minutes unless stopped; rows at once


def _rows(home: Path, run_id: int) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(home / "gapscope.db")) as con:
        metrics = con.execute("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[0]
        preds = con.execute("SELECT COUNT(*) FROM predictions WHERE run_id = ?", (run_id,)).fetchone()[0]
    return int(metrics), int(preds)


def assert_accounted(home: Path, run_id: int, store: Store | None = None) -> dict[str, int]:
    """Rows stored = rows the worker reported (a write it had begun may or may not have landed:
    its rows are either all there or all absent), and the run is not left active."""
    ledger = RunFiles(run_id, home=home).ledger()
    assert ledger is not None, f"run {run_id} has no ledger"
    metrics, preds = _rows(home, run_id) if store is None else (len(store.metrics(run_id)), _rows(home, run_id)[1])
    assert metrics in (ledger["metrics"], ledger["metrics"] + ledger["pending_metrics"]), (metrics, ledger)
    assert preds in (ledger["predictions"], ledger["predictions"] + ledger["pending_predictions"]), (preds, ledger)
    assert ledger["metrics"] > 0
    status = Store(home).run(run_id).status
    assert status not in ACTIVE, f"run {run_id} left {status}"
    return ledger


@pytest.fixture
def digits(store) -> int:
    return store.save_dataset(load_digits_8x8().dataset, source="demo:digits")


@pytest.fixture
def reaper(store):
    """Kill any worker this test's home still has, whatever the test did."""
    yield
    with contextlib.suppress(Exception):
        for row in Store(store.home).runs(status=WORKING):
            if row.pid and same_process(row.pid, row.pid_started):
                os.killpg(row.pid, signal.SIGKILL)


# ---------------------------------------------------------------------- workers killed, app restarted


def test_kill_9_of_a_worker_loses_no_reported_row(store, digits, home, reaper):
    runner = LocalRunner(store, max_parallel=1)
    run_id = runner.submit(_long(digits))
    _wait_for(lambda: (RunFiles(run_id, home=home).ledger() or {}).get("predictions", 0) > 0, what="the first evaluation")
    os.kill(store.run(run_id).pid, signal.SIGKILL)
    row = runner.wait(run_id, timeout_s=60)
    assert row.status == "failed" and "SIGKILL" in row.message
    assert_accounted(home, run_id)


def test_an_app_restart_mid_run_adopts_the_live_worker_and_loses_nothing(store, digits, home, reaper):
    first = LocalRunner(store, max_parallel=1)
    run_id = first.submit(_long(digits))
    _wait_for(lambda: (RunFiles(run_id, home=home).ledger() or {}).get("metrics", 0) > 0, what="the first rows")
    first.close()
    del first  # the app dies; its worker lives on
    second = LocalRunner(Store(home), max_parallel=1, grace_s=2.0)
    assert second.recover() == []  # the worker is alive: adopted, not failed
    assert Store(home).run(run_id).status == "running"
    n = _rows(home, run_id)[0]
    _wait_for(lambda: _rows(home, run_id)[0] > n, what="rows written after the restart")
    assert second.stop(run_id, wait_s=90) == "stopped"
    assert_accounted(home, run_id)


def test_four_concurrent_runs_all_finish_with_every_row(store, digits, home, reaper):
    runner = LocalRunner(store, max_parallel=4)
    ids = [runner.submit(_cfg(digits, seed=s, epochs=1)) for s in range(4)]
    assert sum(store.run(i).status == "running" for i in ids) == 4
    rows = [runner.wait(i, timeout_s=240) for i in ids]
    assert [r.status for r in rows] == ["finished"] * 4, [r.message for r in rows]
    for i in ids:
        assert_accounted(home, i)


# ---------------------------------------------------------------------- a lock held too long


def test_a_foreign_lock_longer_than_the_busy_timeout_is_waited_out(store, digits, home, reaper, monkeypatch):
    monkeypatch.setenv("GAPSCOPE_BUSY_TIMEOUT_S", "0.5")  # the worker gives up on a lock after 0.5 s…
    runner = LocalRunner(store, max_parallel=1)
    run_id = runner.submit(_long(digits))
    log = RunFiles(run_id, home=home).log_path
    _wait_for(lambda: (RunFiles(run_id, home=home).ledger() or {}).get("metrics", 0) > 0, what="the first rows")
    with contextlib.closing(sqlite3.connect(home / "gapscope.db", isolation_level=None)) as foreign:
        foreign.execute("BEGIN EXCLUSIVE")  # …and this holds the write lock until the worker has retried
        _wait_for(lambda: "Retrying" in log.read_text(errors="replace"), what="the worker to meet the lock and retry")
        foreign.execute("COMMIT")
    n = _rows(home, run_id)[0]
    _wait_for(lambda: _rows(home, run_id)[0] > n, what="rows after the lock was released")
    assert Store(home).run(run_id).status == "running"  # the lock did not fail the run
    assert runner.stop(run_id, wait_s=90) == "stopped"
    assert_accounted(home, run_id)


def test_a_lock_held_past_the_timeout_gives_the_app_a_clear_error_and_changes_nothing(store, digits, home):
    impatient = Store(home, busy_timeout_s=0.2)
    with contextlib.closing(sqlite3.connect(home / "gapscope.db", isolation_level=None)) as foreign:
        foreign.execute("BEGIN EXCLUSIVE")
        with pytest.raises(DataError, match="write lock"):
            impatient.create_run(digits, _cfg(digits).to_dict())
        assert impatient.runs() == []  # readers are not blocked in WAL mode
        foreign.execute("COMMIT")
    assert impatient.create_run(digits, _cfg(digits).to_dict()) == 1


# ---------------------------------------------------------------------- a read-only home


@contextlib.contextmanager
def _tmpfs(folder: Path, *, size_mb: int):
    """Mount a tmpfs of ``size_mb`` at ``folder`` (root only; skipped with the reason otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _remount_ro(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def _stored_then_read_only(home: Path, stack: contextlib.ExitStack, *, source: str) -> tuple[int, int]:
    """A home holding digits and a finished run with two metric rows, then made read-only (a
    remount as root, ``chmod`` otherwise); returns (version id, run id)."""
    store = Store(home)
    vid = store.save_dataset(load_digits_8x8().dataset, source=source)
    run_id = store.create_run(vid, _cfg(vid).to_dict())
    store.add_metrics(run_id, 10, "val", {"accuracy": 0.9, "macro_f1": 0.88})
    store.set_run_status(run_id, "finished", message="done")
    if os.geteuid() == 0:
        _remount_ro(home)
    else:
        home.chmod(0o555)
        stack.callback(home.chmod, 0o755)
    return vid, run_id


def test_a_read_only_home_opens_for_browsing_and_refuses_writes_with_the_reason(tmp_path):
    home = tmp_path / "ro"
    with contextlib.ExitStack() as stack:
        if os.geteuid() == 0:
            stack.enter_context(_tmpfs(home, size_mb=32))
        vid, run_id = _stored_then_read_only(home, stack, source="demo:digits")
        browse = Store(home)
        assert browse.read_only  # says why: "Read-only file system" or "Permission denied"
        assert [r.id for r in browse.runs()] == [run_id] and browse.run(run_id).status == "finished"
        assert len(browse.metrics(run_id)) == 2 and len(browse.load_dataset(vid)) == 1797
        for write in (
            lambda: browse.create_run(vid, _cfg(vid).to_dict()),
            lambda: browse.add_metrics(run_id, 11, "val", {"accuracy": 1.0}),
            lambda: browse.save_dataset(load_digits_8x8().dataset, source="again"),
        ):
            with pytest.raises(StoreReadOnly, match="cannot be written"):
                write()
        assert len(Store(home).metrics(run_id)) == 2


# ---------------------------------------------------------------------- a full disk


def _fill(folder: Path) -> Path:
    """Write zeros into ``folder`` until the disk refuses."""
    path = folder / "filler.bin"
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(block)
    return path


def test_a_full_disk_fails_the_run_cleanly_keeps_every_row_readable_and_recovers(tmp_path, monkeypatch):
    disk = tmp_path / "disk"
    with _tmpfs(disk, size_mb=48):
        home = disk / "home"
        monkeypatch.setenv("GAPSCOPE_HOME", str(home))
        monkeypatch.setenv("GAPSCOPE_RESERVE_MB", "2")
        store = Store(home)
        assert (home / "reserve").is_dir()
        vid = store.save_dataset(load_digits_8x8().dataset, source="demo:digits")
        runner = LocalRunner(store, max_parallel=1)
        run_id = runner.submit(_cfg(vid, epochs=20, eval_every_steps=10))  # fits the disk when it starts (~15 MiB)
        try:
            _wait_for(lambda: (RunFiles(run_id, home=home).ledger() or {}).get("predictions", 0) > 0, what="the first evaluation")
            filler = _fill(disk)
            row = runner.wait(run_id, timeout_s=120)
            assert row.status == "failed", row.message
            assert "full" in row.message or "No space left" in row.message, row.message
            assert "Traceback" not in RunFiles(run_id, home=home).log_tail(400)  # the log says why, not where in torch
            ledger = assert_accounted(home, run_id)
            # the store still reads, from a new process's point of view too
            again = Store(home)
            assert again.run(run_id).status == "failed" and len(again.metrics(run_id)) >= ledger["metrics"]
            assert len(again.load_dataset(vid)) == 1797
            # imports are refused before they start, with what to do
            with pytest.raises(DiskFull, match="disk"):
                again.save_dataset(load_digits_8x8().dataset, source="again")
            assert len(again.versions()) == 1
            filler.unlink()  # space again: writes work and the reserve is set aside anew
            healed = Store(home)
            assert healed.create_run(vid, _cfg(vid).to_dict()) > run_id
            assert len(list((home / "reserve").glob("*.bin"))) == 2
        finally:
            with contextlib.suppress(Exception):
                row = Store(home).run(run_id)
                if row.pid and same_process(row.pid, row.pid_started):
                    os.killpg(row.pid, signal.SIGKILL)
            runner.close()


# ---------------------------------------------------------------------- a worker that died with nobody watching


def test_any_reader_sees_a_run_with_a_stale_heartbeat_as_lost(store, digits):
    from core.store.status import STALE_AFTER_S

    run_id = store.create_run(digits, _cfg(digits).to_dict())
    now = time.time()
    store.set_run_status(run_id, "running", pid=2**22 + 1, started_at=now - 600, heartbeat_at=now - 5)
    assert Store(store.home).run(run_id).lost is False
    store.set_run_status(run_id, None, heartbeat_at=now - STALE_AFTER_S - 30)
    row = Store(store.home).run(run_id)
    assert row.lost is True and row.stored_status == "running" and row.status == "lost"
    assert row.label.startswith("👻 lost (no heartbeat for") and "it was running" in row.label
    store.set_run_status(run_id, "failed", message="worker gone")
    assert Store(store.home).run(run_id).lost is False  # ended runs are never lost


def test_the_app_browses_a_read_only_home_and_says_why_it_cannot_save(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import APP

    home = tmp_path / "ro-app"
    with contextlib.ExitStack() as stack:
        if os.geteuid() == 0:
            stack.enter_context(_tmpfs(home, size_mb=32))
        monkeypatch.setenv("GAPSCOPE_HOME", str(home))
        _, run_id = _stored_then_read_only(home, stack, source="upload:digits.zip")
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
        at.switch_page("app_pages/data.py")
        at.run()
        assert not at.exception, at.exception
        assert any("Read-only" in w.value for w in at.sidebar.warning)
        assert any(h.value.startswith("Digits") for h in at.header)  # the stored version is shown
        at.button(key="demo_digits").click()  # importing needs a write: refused with the reason
        at.run()
        assert not at.exception, at.exception
        assert any("cannot be written" in e.value and "GAPSCOPE_HOME" in e.value for e in at.error)
        assert any(h.value.startswith("Digits") for h in at.header)  # the page is whole below the error
        at.switch_page("app_pages/diagnose.py")
        at.run()
        assert not at.exception, at.exception
        assert any("read-only" in w.value for w in at.warning) and not any(b.key == "run_diagnosis" for b in at.button)
        at.switch_page("app_pages/runs.py")
        at.run()
        assert not at.exception, at.exception
        assert any(f"Run #{run_id}" in s.value for s in at.subheader)
