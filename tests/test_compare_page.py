"""AppTest of the Compare page on two real runs (baseline and label smoothing on digits), and the
Runs page's export."""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.data.demos import load_digits_8x8
from core.metrics.results import RunResults
from core.mitigate.settings import LossSettings, Mitigations
from core.store import Store
from core.train.config import RunConfig
from core.train.worker import train_run
from tests.test_train_pages import open_page

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def _two_runs(store: Store) -> list[int]:
    vid = store.save_dataset(load_digits_8x8().dataset, source="demo:digits")
    ids = []
    for name, m in (("baseline", Mitigations()), ("smoothed", Mitigations(loss=LossSettings(label_smoothing=0.1)))):
        cfg = RunConfig(version_id=vid, model="small_cnn", epochs=2, batch_size=64, lr=3e-3, seed=0, device="cpu", mitigations=m)
        run = store.create_run(vid, cfg.to_dict(), name=name)
        assert train_run(store, run) == "finished"
        ids.append(run)
    return ids


def test_compare_shows_deltas_diffs_galleries_and_exports(home):
    store = Store(home)
    ids = _two_runs(store)
    at = open_page("app_pages/compare.py")
    assert not at.exception, at.exception
    assert at.multiselect(key="cmp_runs").value == ids
    frames = [df.value for df in at.dataframe]
    metrics = frames[0]
    assert metrics.columns[0] == "Δ #2 · smoothed"  # the change first: never cut off
    assert "hallucination rate @τ" in metrics.index and "macro-F1" in metrics.index
    changed = metrics.loc["accuracy", "Δ #2 · smoothed"]
    assert changed == "0" or re.fullmatch(r"[+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]", changed)  # with its interval
    text = " ".join(m.value for m in at.markdown)
    for i in ids:  # which evaluation each run is read at, in one line
        step = RunResults(store, i).result_step
        assert f"test scores at step {step}, the best val macro-F1" in text
    assert f"#{ids[1]} · smoothed against #{ids[0]} · baseline:" in text and "McNemar p =" in text
    settings = frames[-1]
    assert list(settings.index) == ["loss: label smoothing ε"] and settings.iloc[0].tolist() == ["0", "0.1"]
    at.toggle(key="cmp_last").set_value(True)
    at.run()
    assert not at.exception, at.exception
    last = " ".join(m.value for m in at.markdown)
    assert all(f"test scores at step {RunResults(store, i).eval_steps()[-1]}, the last evaluation" in last for i in ids)
    m = {x.label: x.value for x in at.metric}
    assert sum(int(m[k].replace(",", "")) for k in ("Errors fixed", "Errors introduced", "Still wrong", "Right in both")) == 176
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Recall per class" in s for s in specs) and any("red worse, blue better" in s for s in specs)
    assert sum('"name":"perfect"' in s for s in specs) == 2  # a reliability diagram per run
    at.radio(key="cmp_outcome").set_value("still wrong")
    at.run()
    assert not at.exception, at.exception
    at.button(key="export_compare_prepare").click()
    at.run()
    assert not at.exception, at.exception
    assert {b.proto.label for b in at.get("download_button")} == {
        "Report (HTML)",
        "Metrics (CSV)",
        "Metrics (Parquet)",
        "Run configs (JSON)",
    }


def test_compare_asks_for_two_runs_and_warns_about_mismatches(home):
    store = Store(home)
    at = open_page("app_pages/compare.py")
    assert any("needs two runs" in i.value for i in at.info)
    ids = _two_runs(store)
    other = store.save_dataset(load_digits_8x8().dataset, source="upload:digits-copy")
    cfg = RunConfig(version_id=other, model="small_cnn", epochs=1, batch_size=64, seed=0, device="cpu", tau=0.8)
    run = store.create_run(other, cfg.to_dict(), name="elsewhere")
    assert train_run(store, run) == "finished"
    at = open_page("app_pages/compare.py")
    at.multiselect(key="cmp_runs").set_value([ids[0], run])
    at.run()
    assert not at.exception, at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "different datasets" in warnings and "different τ" in warnings
    assert any("no item-by-item diff" in i.value for i in at.info)


def test_compare_keeps_its_runs_after_a_visit_to_another_page(home):
    store = Store(home)
    vid = store.save_dataset(load_digits_8x8().dataset, source="demo:digits")
    ids = []
    for name in ("a", "b", "c"):
        run = store.create_run(vid, {"model": "small_cnn"}, name=name)
        store.add_metrics(run, 10, "val", {"macro_f1": 0.5})
        store.add_metrics(run, 10, "test", {"accuracy": 0.8 + np.float64(len(ids)) / 100})
        store.set_run_status(run, "finished")
        ids.append(run)
    at = open_page("app_pages/compare.py")
    assert at.multiselect(key="cmp_runs").value == ids[1:]  # the newest two
    at.multiselect(key="cmp_runs").set_value([ids[2], ids[0]])
    at.run()
    at.toggle(key="cmp_last").set_value(True)
    at.run()
    assert not at.exception, at.exception
    at.switch_page("app_pages/runs.py")
    at.run()
    assert not at.exception, at.exception
    at.switch_page("app_pages/compare.py")
    at.run()
    assert not at.exception, at.exception
    assert at.multiselect(key="cmp_runs").value == [ids[2], ids[0]] and at.toggle(key="cmp_last").value
