"""Shared fixtures. Every test gets its own empty GAPSCOPE_HOME; the asset cache is shared."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
APP = str(ROOT / "app.py")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # under `-n 2` each of the two test processes gets one core: torch's default of a thread per
    # core would have four threads spinning on two cores (read by torch when it is first imported)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("GAPSCOPE_HOME", str(path))
    # no 8 MiB disk reserve in each of hundreds of test homes; tests/test_faults.py sets one
    monkeypatch.setenv("GAPSCOPE_RESERVE_MB", "0")
    return path


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory) -> Path:
    """One embedding cache for the whole test run (see ``shared_embeddings``)."""
    return tmp_path_factory.mktemp("embeddings")


@pytest.fixture
def shared_embeddings(embedding_cache, monkeypatch) -> Path:
    """Embeddings from the run's one cache: a demo is embedded once per run, not once per test.

    Safe because the cache is keyed by content: a file is named by the backbone's identity, the
    preprocessing and every item's content hash, so a hit is the vectors that embedding would
    compute. The test's own home (store, diagnoses, runs) stays its own. Only for tests that need
    the embeddings and do not look at how they were made (cold, warm, which items, how long);
    ``tests/test_embed.py`` tests the cache itself with a cache of its own.
    """
    from core.embed import cache

    monkeypatch.setattr(cache, "cache_dir", lambda: embedding_cache)
    return embedding_cache


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread, and a shared 2-core machine makes spinning OpenMP
    threads crawl; the setting is restored for the rest of the session."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def store(home):
    from core.store import Store

    return Store(home)


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``gpu`` (with the reason) on a machine without a CUDA GPU."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; this machine has none")
    for item in gpu_tests:
        item.add_marker(skip)


def needs_asset(key: str):
    """Skip (with the reason) when the setup could not fetch an asset on this machine."""
    from core.data import assets

    return pytest.mark.skipif(not assets.is_ready(key), reason=f"asset {key} not fetched: {assets.how_to_get(assets.ASSETS[key])}")
