"""AppTest of the Compare page on two real runs (baseline and label smoothing on digits), and the
Runs page's export."""

from __future__ import annotations

import pytest

from core.data.demos import load_digits_8x8
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
    assert "Δ #2 · smoothed" in metrics.columns and "hallucination rate @τ" in metrics.index and "macro-F1" in metrics.index
    assert metrics["Δ #2 · smoothed"].astype(float).abs().sum() > 0  # shown as text, "—" where missing
    settings = frames[-1]
    assert list(settings.index) == ["mitigations.loss.label_smoothing"]
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
