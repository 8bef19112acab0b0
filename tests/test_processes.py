"""Process facts the runners rely on: a pid and its start time tell a reused pid apart."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from core.runners.processes import process_start_time, same_process


def test_this_process_started_when_the_system_says_and_is_itself():
    started = process_start_time(os.getpid())
    assert started is not None and abs(started - psutil.Process().create_time()) < 0.02
    assert psutil.boot_time() <= started <= time.time()
    assert same_process(os.getpid(), started) and same_process(os.getpid(), None)
    # the same pid with another start time is another process: a pid reused after a worker ended
    assert not same_process(os.getpid(), started - 1000.0)


def test_an_ended_process_is_gone_even_before_it_is_reaped():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        started = started or process_start_time(child.pid)
        time.sleep(0.01)
    assert process_start_time(child.pid) is None and not same_process(child.pid, started)  # a zombie
    child.wait()
    assert process_start_time(child.pid) is None and not same_process(child.pid, None)
    assert process_start_time(None) is None and process_start_time(0) is None and process_start_time(-1) is None


def test_without_psutil_a_live_pid_is_trusted_and_a_dead_one_is_gone(monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil → ImportError
    assert process_start_time(os.getpid()) != process_start_time(os.getpid())  # nan: alive, start unknown
    assert same_process(os.getpid(), 123.0)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_start_time(child.pid) is None
