"""A wrong ``GAPSCOPE_RAY_ADDRESS``: said at once, and the app keeps showing what is stored."""

from __future__ import annotations

import pytest

from core.data.demos import load_digits_8x8
from core.train.config import RunConfig

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def test_an_unreachable_cluster_is_said_at_once_and_stored_runs_still_show(store, monkeypatch):
    """A wrong GAPSCOPE_RAY_ADDRESS: the pages say so within seconds (ray.init alone would retry for
    minutes), the Runs page still shows what is stored, and nothing raises."""
    import socket

    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]')")
    if ray.is_initialized():  # pragma: no cover - connected already: RayRunner would not try the address
        pytest.skip("Ray is already initialised in this process")
    from core.errors import DataError
    from core.runners.ray import RayRunner
    from tests.test_train_pages import open_page

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    with pytest.raises(DataError, match=f"Cannot reach the Ray cluster at {address}"):
        RayRunner(store, address=address)
    vid = store.save_dataset(load_digits_8x8().dataset, source="demo:digits")
    run_id = store.create_run(vid, RunConfig(version_id=vid, model="small_cnn").to_dict(), name="kept")
    monkeypatch.setenv("GAPSCOPE_RAY_ADDRESS", address)
    at = open_page("app_pages/runs.py")  # asserts that nothing raised
    assert any("Cannot reach the Ray cluster" in e.value for e in at.error)
    assert any(f"#{run_id} · kept" in o for s in at.selectbox for o in s.options)  # the stored run is still there
    assert any("not connected" in c.value for c in at.sidebar.caption)
    at.switch_page("app_pages/train.py")
    at.run()
    assert not at.exception, at.exception
    assert any("Cannot reach the Ray cluster" in e.value for e in at.error)
