"""AppTest of the Shift page: a target picked by a column, tested for shift, and a run's label-free
estimates there with the truth beside them; a made prior shift; settings that stay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data import Dataset
from core.data.splits import stratified_split
from core.store import Store
from core.train.config import RunConfig
from core.train.worker import train_run
from tests.test_train_pages import open_page

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


def sites(store: Store) -> int:
    """A table from two sites: site "b" has its ``dose`` moved and a different class mix."""
    rng = np.random.default_rng(0)
    n = 1200
    site = np.where(np.arange(n) < 800, "a", "b")
    y = np.where(site == "a", rng.random(n) < 0.5, rng.random(n) < 0.2).astype(int)
    x = rng.normal(size=(n, 3)) + y[:, None] * 1.5
    x[site == "b", 0] += 2.0
    df = pd.DataFrame({"dose": x[:, 0], "age": x[:, 1], "score": x[:, 2]})
    meta = pd.DataFrame({"site": site})
    ds = Dataset("sites", "tabular", df, y, ["healthy", "ill"], stratified_split(y * 2 + (site == "b"), val=0.2, test=0.3), meta)
    return store.save_dataset(ds, source="upload:sites.csv")


def frames(at) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe]


def test_a_column_target_is_tested_and_a_run_estimated_there(home):
    store = Store(home)
    vid = sites(store)
    at = open_page("app_pages/shift.py")
    assert at.radio(key="sh_kind").value == "column" and at.selectbox(key="sh_column").value == "site"
    assert at.multiselect(key="sh_ref_values").value == ["a"] and at.multiselect(key="sh_tgt_values").value == ["b"]
    assert any("reference" in m.value and "target" in m.value for m in at.markdown)
    at.button(key="sh_test").click()
    at.run()
    assert not at.exception, at.exception
    tests = frames(at)[0]
    assert list(tests["test"]) == ["MMD (permutation test)", "domain classifier (AUC)"]
    assert all(v.startswith("shifted") for v in tests["verdict"])
    columns = frames(at)[1].set_index("column")
    assert bool(columns.loc["dose", "shifted"]) and not bool(columns.loc["age", "shifted"])
    assert any("The target is shifted" in m.value for m in at.markdown)
    assert any("No finished run" in i.value for i in at.info)

    cfg = RunConfig(version_id=vid, model="auto", epochs=15, batch_size=32, lr=1e-2)
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished"
    at.run()
    assert at.selectbox(key="sh_run").value == run_id
    at.button(key="sh_estimate").click()
    at.run()
    assert not at.exception, at.exception
    est = next(f for f in frames(at) if "estimated accuracy" in f.columns)
    assert set(est["method"]) >= {"ATC (negative entropy)", "BBSE (label shift only)"} and "true accuracy" in est.columns
    assert ((est["estimated accuracy"] >= 0) & (est["estimated accuracy"] <= 1)).all()
    assert any("expected accuracy on the target" in m.value and "with the target's labels" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) == 1

    # the results and choices stay when the page is left and opened again
    at.switch_page("app_pages/data.py")
    at.run()
    at.switch_page("app_pages/shift.py")
    at.run()
    assert at.multiselect(key="sh_tgt_values").value == ["b"] and at.selectbox(key="sh_run").value == run_id
    assert any("The target is shifted" in m.value for m in at.markdown)


def test_a_made_prior_shift_and_a_bad_choice_get_words_not_errors(home):
    store = Store(home)
    sites(store)
    at = open_page("app_pages/shift.py")
    at.radio(key="sh_kind").set_value("prior")
    at.run()
    at.number_input(key="sh_prior_0").set_value(0.9)
    at.number_input(key="sh_prior_1").set_value(0.1)
    at.run()
    assert not at.exception, at.exception
    assert any("drawn as healthy 90%, ill 10%" in m.value for m in at.markdown)

    # the made target saved as a version: all test rows, 90 % healthy, each item keeping its number
    vid = max(v.id for v in store.versions())
    at.button(key="sh_save_target").click()
    at.run()
    assert not at.exception, at.exception
    saved = max(v.id for v in store.versions())
    info, target = store.version(saved), store.load_dataset(saved)
    assert saved != vid and info.parent_id == vid and info.kind == "shift" and info.params["shift_target"]["kind"] == "prior"
    assert (target.split == 2).all() and (target.labels == 0).mean() > 0.8  # as near 90 % as the test rows allow
    parent = store.load_dataset(vid)
    assert (parent.split[target.item_ids()] == 2).all() and (parent.labels[target.item_ids()] == target.labels).all()
    assert any(f"as version {saved}" in m.value for m in at.success)
    at.radio(key="sh_kind").set_value("version")
    at.run()
    assert at.selectbox(key="sh_version").value == saved and any("every row of version" in m.value for m in at.markdown)
    at.radio(key="sh_kind").set_value("column")
    at.run()
    at.multiselect(key="sh_tgt_values").set_value([])
    at.run()
    assert not at.exception and any("pick the column values the target holds" in w.value for w in at.warning)


def test_weights_for_the_target_make_a_version_a_run_can_draw_from(home):
    from core.mitigate.settings import Mitigations, Resampling
    from core.shift.weights import WEIGHT_COLUMN

    store = Store(home)
    vid = sites(store)
    cfg = RunConfig(version_id=vid, model="auto", epochs=5, batch_size=32, lr=1e-2)
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished"
    at = open_page("app_pages/shift.py")
    assert at.button(key="sh_weigh_label").disabled  # the class weights need an estimate first
    at.button(key="sh_weigh_covariate").click()
    at.run()
    assert not at.exception, at.exception
    weighted = max(v.id for v in store.versions())
    info, ds = store.version(weighted), store.load_dataset(weighted)
    assert info.parent_id == vid and info.kind == "weighted" and any("importance" in s.value for s in at.success)
    w, site, train = ds.meta[WEIGHT_COLUMN].to_numpy(), ds.meta["site"].to_numpy(), ds.split == 0
    assert (w[~train] == 1).all() and w[train].mean() == pytest.approx(1.0)
    assert w[train & (site == "b")].mean() > 2 * w[train & (site == "a")].mean()  # site b's items look like the target
    assert "importance_weight" not in [o for o in at.selectbox(key="sh_column").options]

    run = RunConfig(
        version_id=weighted, model="auto", epochs=3, batch_size=32, lr=1e-2, mitigations=Mitigations(resample=Resampling("importance"))
    )
    rid = store.create_run(weighted, run.to_dict())
    assert train_run(store, rid) == "finished", store.run(rid).message

    # the label-shift weights, once the run is estimated on the target
    at.selectbox(key="sh_run").set_value(run_id)
    at.run()
    at.button(key="sh_estimate").click()
    at.run()
    at.button(key="sh_weigh_label").click()
    at.run()
    assert not at.exception, at.exception
    labelled = max(v.id for v in store.versions())
    assert store.version(labelled).params["importance"]["kind"] == "label"


def test_kept_results_reach_compare_and_the_report(home):
    from core.report.html import build_report

    store = Store(home)
    vid = sites(store)
    ids = []
    for seed in (0, 1):
        cfg = RunConfig(version_id=vid, model="auto", epochs=5, batch_size=32, lr=1e-2, seed=seed)
        ids.append(store.create_run(vid, cfg.to_dict()))
        assert train_run(store, ids[-1]) == "finished"
    at = open_page("app_pages/shift.py")
    assert not [b for b in at.button if b.key == "sh_keep"]  # nothing to keep yet
    at.button(key="sh_test").click()
    at.run()
    at.selectbox(key="sh_run").set_value(ids[0])
    at.run()
    at.button(key="sh_estimate").click()
    at.run()
    at.button(key="sh_keep").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Kept" in s.value for s in at.success)

    at.switch_page("app_pages/compare.py")
    at.run()
    at.multiselect(key="cmp_runs").set_value(ids)
    at.run()
    assert not at.exception, at.exception
    assert any(h.value == "On shifted targets" for h in at.subheader)
    shifted = next(d.value for d in at.dataframe if "accuracy (ATC)" in d.value.columns)
    assert shifted["run"].tolist() == [ids[0]] and shifted["shifted"].tolist() == ["yes"]
    report = build_report(store, ids)
    assert "<section id='shift'>" in report and "MMD (permutation test): shifted" in report and "accuracy (ATC)" in report
