"""A diagnosis in two passes: a seeded stratified sample first (seconds), then every item."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.data.tables import TableRoles, dataset_from_table
from core.diagnose.pipeline import DiagnoseConfig, cache_path, diagnose
from core.diagnose.progressive import (
    SAMPLE_FROM,
    SAMPLE_SIZE,
    SAMPLE_SIZES,
    DiagnosisJob,
    eta_words,
    first_sample_size,
    latest,
    locations,
    progress_words,
    sample_of,
    sample_rows,
)
from core.diagnose.synthetic import inject_noise, make_noise_matrix
from core.store import Store
from tests.conftest import APP


def blobs(n: int = 8_000, noise: float = 0.2, seed: int = 0):
    """Four Gaussian blobs in 16 dimensions as a table, one class rare, ``noise`` symmetric label noise."""
    rng = np.random.default_rng(seed)
    y = rng.choice(4, n, p=[0.4, 0.3, 0.27, 0.03])
    centres = rng.normal(0, 4, (4, 16))
    X = centres[y] + rng.normal(0, 1, (n, 16))
    noisy, flipped = inject_noise(y, make_noise_matrix(4, kind="symmetric", rate=noise), seed=seed)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(16)]).assign(label=noisy)
    ds = dataset_from_table(df, TableRoles(label="label", features=[f"x{i}" for i in range(16)]), name="blobs").dataset
    return ds, flipped


def test_the_sample_is_seeded_stratified_and_keeps_rare_classes():
    ds, _ = blobs()
    rows = sample_rows(ds)
    assert np.array_equal(rows, sample_rows(ds)) and not np.array_equal(rows, sample_rows(ds, seed=1))
    assert abs(len(rows) - SAMPLE_SIZE) <= 4 and np.all(np.diff(rows) > 0)
    full = np.bincount(ds.labels, minlength=4) / len(ds)
    part = np.bincount(ds.labels[rows], minlength=4) / len(rows)
    np.testing.assert_allclose(part, full, atol=0.002)
    small, _ = blobs(n=500)
    assert np.array_equal(sample_rows(small), np.arange(500))


def test_the_sample_estimate_comes_first_and_is_close_to_the_full_one(home):
    ds, flipped = blobs()
    assert len(ds) >= SAMPLE_FROM
    cfg = DiagnoseConfig()
    assert latest(ds, cfg) is None
    first = diagnose(sample_of(ds), cfg)  # what the job's first pass leaves on disk
    early = latest(ds, cfg)
    assert early is not None and early.scope == "sample" and early.n_items == len(sample_rows(ds))
    job = DiagnosisJob(ds, cfg)
    job.start()
    job.join(timeout=300)
    assert not job.is_alive() and job.error is None and job.status()[2] == "done"
    final = latest(ds, cfg)
    assert final is not None and final.scope == "full" and final.n_items == len(ds)
    rate = lambda d: 1 - float(np.trace(d.issues.joint))
    assert abs(rate(first) - flipped.mean()) < 0.03  # 20 % of the labels were changed
    assert abs(rate(first) - rate(final.diagnosis)) < 0.03


def test_a_failing_diagnosis_says_why_and_ends(home):
    ds, _ = blobs(n=SAMPLE_FROM)
    job = DiagnosisJob(ds, DiagnoseConfig(backbone="no-such-backbone"))
    job.start()
    job.join(timeout=120)
    assert job.status()[2] == "failed" and "backbone" in (job.error or "")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_pages_show_the_sample_estimate_then_the_full_diagnosis(home):
    ds, _ = blobs()
    store = Store(home)
    store.save_dataset(ds, source="upload:blobs.csv")
    diagnose(sample_of(ds), DiagnoseConfig())  # the first pass has ended
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/data.py")
    at.run()
    assert not at.exception, at.exception
    assert any(m.label == "Estimated label noise" for m in at.metric)
    assert any("stratified sample of" in c.value for c in at.caption)
    at.switch_page("app_pages/diagnose.py")
    at.run()
    assert any("stratified sample" in i.value for i in at.info)  # not run in full yet: it offers to
    at.button(key="run_diagnosis").click()
    at.run()
    assert not at.exception, at.exception
    full = cache_path(ds, DiagnoseConfig())
    deadline = time.monotonic() + 300
    while not full.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert full.exists(), "the background diagnosis did not finish"
    at.run()
    assert not at.exception, at.exception
    assert any(m.label == "Suspected label errors" for m in at.metric) and len(at.tabs) >= 5  # the whole page


def test_durations_are_said_in_words_at_the_precision_an_estimate_has():
    assert eta_words(0) == eta_words(4.9) == "a few seconds"
    assert eta_words(12.4) == "about 12 s"
    assert eta_words(40) == eta_words(41.9) == "about 40 s"
    assert eta_words(57) == "about 55 s" and eta_words(58) == "about 1 min"
    assert eta_words(180) == eta_words(200) == "about 3 min"
    assert eta_words(837) == "about 14 min" and eta_words(1_140) == "about 19 min"
    assert eta_words(89 * 60) == "about 89 min" and eta_words(2 * 3600) == "about 2 h" and eta_words(6_000) == "about 1.5 h"
    with pytest.raises(ValueError):
        eta_words(float("nan"))
    assert progress_words("sample", "embedding items", 40) == (
        "Diagnosing a stratified sample, for a first estimate: embedding items… — about 40 s left"
    )
    assert progress_words("full", "kNN graph", None) == "Diagnosing every item: kNN graph…"


def test_time_left_follows_the_speed_measured_during_the_pass():
    ds, _ = blobs(n=SAMPLE_FROM)
    job = DiagnosisJob(ds, DiagnoseConfig())
    assert job.seconds_left() is None  # no plan before it starts
    t0 = 1_000.0
    with job._lock:  # the plan a start would make: this pass predicted at 100 s embedding + 10 s detection
        job._plan, job._pass_start = [("full", 100.0, 10.0)], t0
    assert job.seconds_left(now=t0 + 30) == pytest.approx(80.0)  # no batch done yet: the prediction
    job._embedding(25, 100, now=t0 + 50)  # measured: twice as slow as predicted
    assert job.seconds_left(now=t0 + 50) == pytest.approx(150.0 + 10.0)
    assert job.seconds_left(now=t0 + 60) == pytest.approx(140.0 + 10.0)
    job._embedding(100, 100, now=t0 + 200)  # embedded; detection remains
    assert job.seconds_left(now=t0 + 204) == pytest.approx(6.0)
    with job._lock:  # a later pass adds its own prediction
        job._plan.append(("full", 7.0, 3.0))
    assert job.seconds_left(now=t0 + 204) == pytest.approx(16.0)


def test_the_first_sample_is_as_large_as_this_machine_embeds_within_the_budget(monkeypatch):
    from core.data import Dataset
    from core.embed import embeddings, throughput

    tab, _ = blobs()
    assert first_sample_size(tab, DiagnoseConfig()) == SAMPLE_SIZE  # tabular: nothing to embed
    n = 8_000
    texts = np.asarray([f"tweet number {i}: the service was {'great' if i % 2 else 'awful'} today" for i in range(n)], dtype=object)
    ds = Dataset("tweets", "text", texts, np.arange(n) % 2, ["neg", "pos"], np.zeros(n, np.int8))
    monkeypatch.setattr(throughput, "current_load", lambda: 0.0)
    key = embeddings.rate_key("text", "minilm", "cpu", embeddings.TEXT_METHOD, embeddings.text_engine(None, "cpu"))
    per_text = float(embeddings.text_units(texts).mean())
    throughput.record(key, 200 * per_text, 1.0, load=0.0)  # 200 texts a second: 3,000 take 15 s
    assert first_sample_size(ds, DiagnoseConfig()) == 3_000
    throughput.path().unlink()
    throughput.record(key, 50 * per_text, 1.0, load=0.0)  # 50 a second: 1,500 take 30 s, 500 take 10 s
    assert first_sample_size(ds, DiagnoseConfig()) == 500
    throughput.path().unlink()
    throughput.record(key, 5 * per_text, 1.0, load=0.0)  # none fits: the smallest
    assert first_sample_size(ds, DiagnoseConfig()) == SAMPLE_SIZES[-1]
    where = locations(ds, DiagnoseConfig())
    assert [len(rows) for _, rows in where.samples] == [3_000, 1_500, 500] and where.available() is None
