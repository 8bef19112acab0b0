"""Cached handles to the store and datasets, and the current-dataset choice shared by pages."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING

import streamlit as st

from core import paths
from core.data.dataset import Dataset
from core.data.profile import Profile, profile
from core.errors import DataError
from core.hardware import detect
from core.store import Store

if TYPE_CHECKING:
    from core.runners.base import Runner
    from core.train.config import RunConfig

CURRENT = "current_version"  # session_state key: the dataset version the user is looking at


@st.cache_resource(show_spinner=False)
def _store(home: str) -> Store:
    return Store(home)


def store() -> Store:
    # keyed by the home folder so tests that point GAPSCOPE_HOME elsewhere get their own store
    return _store(str(paths.home()))


@st.cache_resource(show_spinner="Loading dataset…", max_entries=4)
def _dataset(home: str, version_id: int) -> Dataset:
    return _store(home).load_dataset(version_id)


@st.cache_resource(show_spinner="Profiling…", max_entries=4)
def _profile(home: str, version_id: int) -> Profile:
    return profile(_dataset(home, version_id))


def dataset(version_id: int) -> Dataset:
    """The dataset of a version; shared read-only between reruns, tabs and pages."""
    return _dataset(str(paths.home()), version_id)


def dataset_profile(version_id: int) -> Profile:
    return _profile(str(paths.home()), version_id)


@st.cache_resource(show_spinner=False)
def _device_probe() -> Future:
    # importing torch takes seconds on a cold start: do it off the script thread so the first
    # page draws at once and the sidebar fills the device in on a later rerun
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="gapscope-device").submit(detect)


def device_label() -> str:
    """'CPU · 2 cores', 'NVIDIA H100 80GB HBM3 · 80 GB', 'detecting…' or 'unavailable (…)'."""
    probe = _device_probe()
    if "torch" in sys.modules:  # torch already loaded: the probe is a matter of microseconds
        wait([probe], timeout=5)
    if not probe.done():
        return "detecting…"
    try:
        return probe.result().label
    except Exception as err:  # torch missing or broken: say so, keep the app usable
        return f"unavailable ({type(err).__name__}: {err})"


def gpu_count() -> int:
    """CUDA GPUs visible to this app (0 while the device probe runs, or without CUDA)."""
    probe = _device_probe()
    if not probe.done() or probe.exception():
        return 0
    return int(probe.result().gpus)


def run_gpus() -> int:
    """GPUs one run can have where runs train: this machine's (``gpu_count``), or with a Ray
    cluster its largest node's (0 while unknown or unreachable)."""
    if not ray_address():
        return gpu_count()
    try:
        node_gpus = getattr(_connect(), "node_gpus", None)
        return int(node_gpus()) if node_gpus is not None else 0
    except Exception:  # unreachable, or Ray missing: the page says so where it needs the runner
        return 0


def current_version() -> int | None:
    """The version chosen in this tab, else the newest version in the store."""
    vid = st.session_state.get(CURRENT)
    versions = store().versions()
    if any(v.id == vid for v in versions):
        return vid
    return versions[-1].id if versions else None


def set_current_version(version_id: int) -> None:
    st.session_state[CURRENT] = version_id


@st.cache_resource(show_spinner="Connecting to the runner…")
def _runner(home: str, ray_address: str) -> Runner:
    runner: Runner
    if ray_address:  # GAPSCOPE_RAY_ADDRESS: every run a task on that Ray cluster
        from core.runners.ray import RayRunner

        runner = RayRunner(_store(home), address=ray_address)
    else:
        from core.runners.local import LocalRunner

        runner = LocalRunner(_store(home))
    if _store(home).read_only is None:  # a read-only home is for browsing: nothing to start or mark
        runner.recover()  # runs left "running" by a killed app or worker → failed, rows kept
        runner.start_ticking()  # the queue moves and dead workers are noticed without reruns
    return runner


def ray_address() -> str:
    """``GAPSCOPE_RAY_ADDRESS`` (a Ray cluster to run on), or "" to run on this machine."""
    return os.environ.get("GAPSCOPE_RAY_ADDRESS", "").strip()


_UNREACHABLE: dict[tuple[str, str], tuple[float, DataError]] = {}  # (home, address) → when it failed, and why
RETRY_S = 30.0  # an unreachable cluster is tried again after this long, not on every rerun


def _connect() -> Runner:
    """``_runner`` for this home and address; a failed connection is remembered for ``RETRY_S``
    (the sidebar and the page both ask, and each try may wait seconds on an address that is down)."""
    key = (str(paths.home()), ray_address())
    failed = _UNREACHABLE.get(key)
    if failed is not None and time.monotonic() - failed[0] < RETRY_S:
        raise failed[1]
    try:
        return _runner(*key)
    except DataError as err:
        _UNREACHABLE[key] = (time.monotonic(), err)
        raise


def runner() -> Runner:
    """The app's one runner (per home): this machine's (``LocalRunner``), or a Ray cluster's
    (``RayRunner``) when ``GAPSCOPE_RAY_ADDRESS`` is set. Recovers lost runs once, then keeps the
    queue moving. A cluster that cannot be reached stops the page with the reason."""
    found = runner_or_none()
    if found is None:
        st.stop()
    assert found is not None
    return found


def runner_or_none() -> Runner | None:
    """``runner()``, or None after showing why it cannot be had (an unreachable Ray cluster): for
    pages that still show stored results without one."""
    try:
        return _connect()
    except DataError as err:
        st.error(str(err), icon="🚫")
        return None


def runner_label() -> str:
    """Where runs train, for the sidebar: 'this machine' or the Ray cluster and its resources."""
    address = ray_address()
    if not address:
        return "this machine"
    try:
        r = _connect()
        describe = getattr(r, "describe", None)
        return describe() if describe is not None else f"Ray cluster at {address}"
    except Exception as err:  # unreachable, or Ray missing: say so, keep the page usable
        return f"Ray cluster at {address}: not connected ({err})"


def estimate_run_seconds(cfg: RunConfig, ds: Dataset) -> float | None:
    from core.train.estimates import estimate_seconds

    try:
        return estimate_seconds(cfg, ds, gpu=run_gpus() > 0)
    except ValueError:
        return None


SAVE_ERROR = "save_error"  # session key: a refused write, shown at the top of the next run


@contextmanager
def saving() -> Iterator[None]:
    """Around a write a button starts: a ``DataError`` (read-only home, full disk, a store held
    busy, bad input) is shown as it is, full width at the top of the page (``show_save_error``);
    nothing stored is lost and the rest of the page stays as it was."""
    try:
        yield
    except DataError as err:
        st.session_state[SAVE_ERROR] = str(err)
        st.rerun()


def show_save_error() -> None:
    if message := st.session_state.pop(SAVE_ERROR, None):
        st.error(message, icon="🚫")


def require_dataset():
    """(version id, VersionInfo, Dataset) of the current dataset, or a pointer to the Data page
    and ``st.stop()`` when there is none yet — the opening of every page that needs data."""
    vid = current_version()
    if vid is None:
        st.info("No dataset yet. Open one on the Data page first.")
        st.page_link("app_pages/data.py", label="Go to Data", icon="📊")
        st.stop()
    return vid, store().version(vid), dataset(vid)


def follow_job(job, running: bool, *, seen_key: str, doing: str, stopped: str, done: Callable[[], str] | None = None) -> None:
    """A background job's progress bar, redrawn every second while ``running``; its error when it
    failed (``stopped``: "The probe stopped"); once it is done, ``done()``'s words, or without them one
    rerun of the whole page, which then shows the new record (``seen_key`` remembers the job already
    shown)."""

    @st.fragment(run_every=1.0 if running else None)
    def live() -> None:
        frac, stage = job.status()
        if job.error:
            st.error(f"{stopped}: {job.error}")
        elif stage == "done" and done is not None:
            st.success(done())
        elif stage == "done":
            if st.session_state.get(seen_key) is not job:
                st.session_state[seen_key] = job
                st.rerun(scope="app")
        else:
            st.progress(min(max(frac, 0.0), 1.0), text=f"{doing}: {stage}")

    live()
