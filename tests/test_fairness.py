"""core.fairness: the gaps equal fairlearn's on fixtures, the per-group table equals the project's
metrics on each group, Kamiran–Calders weights make the label independent of the group, thresholds
per group close an equalized-odds gap, and a real run is measured, re-weighted and compared."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data import Dataset
from core.data.splits import stratified_split
from core.errors import DataError
from core.fairness.evaluate import fairness_rows, load, run_fairness, table_of
from core.fairness.groups import binary_gaps, bootstrap_gaps, gap_rates, group_table, sensitive_columns, sensitive_groups
from core.fairness.mitigate import fit_thresholds, kamiran_calders, reweighed_version
from core.metrics import accuracy, ece, hallucination_rate
from core.store import RunFiles
from tests.test_train import _run

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


def _fixture(seed: int = 0, n: int = 600):
    rng = np.random.default_rng(seed)
    groups = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.5, 0.3, 0.2])
    y = rng.random(n) < np.where(groups == "a", 0.5, 0.3)
    pred = np.where(rng.random(n) < 0.8, y, ~y) & ~((groups == "c") & (rng.random(n) < 0.5))
    return y, pred, groups


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_gaps_equal_fairlearns(seed):
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    y, pred, groups = _fixture(seed)
    got = binary_gaps(y, pred, groups)
    assert got["demographic_parity_difference"] == pytest.approx(demographic_parity_difference(y, pred, sensitive_features=groups))
    assert got["equalized_odds_difference"] == pytest.approx(equalized_odds_difference(y, pred, sensitive_features=groups))
    assert got["accuracy"] == pytest.approx(float((y == pred).mean()))
    # a resample's counts as weights: the same as the gaps of the repeated items
    rng = np.random.default_rng(seed)
    draw = rng.integers(0, len(y), len(y))
    counts = np.bincount(draw, minlength=len(y))[None, :]
    rates = gap_rates(counts, y, pred, groups)
    again = binary_gaps(y[draw], pred[draw], groups[draw])
    assert {k: float(v[0]) for k, v in rates.items()} == pytest.approx(again)


def test_bootstrap_intervals_hold_the_figure_and_a_paired_change_is_its_difference():
    y, pred, groups = _fixture(0)
    out = bootstrap_gaps(y, pred, groups, n_boot=400)
    for row in out.values():
        assert row["a_low"] <= row["a"] <= row["a_high"]
    same = bootstrap_gaps(y, pred, groups, pred, n_boot=400)
    assert all(r["delta"] == 0 and r["low"] == r["high"] == 0 for r in same.values())  # identical decisions: no change at all
    fair = y.copy()  # perfect decisions: no gap in odds
    change = bootstrap_gaps(y, pred, groups, fair, n_boot=400)["equalized_odds_difference"]
    assert change["b"] == 0 and change["delta"] < 0 and change["high"] < 0


def test_the_group_table_is_the_projects_metrics_on_each_group():
    rng = np.random.default_rng(3)
    n, k = 300, 3
    probs = rng.dirichlet(np.ones(k) * 0.5, n)
    y = rng.integers(0, k, n)
    groups = rng.choice(np.array(["x", "y"], dtype=object), n)
    table = group_table(probs, y, groups, ["p", "q", "r"], tau=0.8)
    for g in ("x", "y"):
        at = groups == g
        row = table.loc[g]
        assert row["items"] == at.sum()
        assert row["accuracy"] == pytest.approx(accuracy(probs[at], y[at]))
        assert row["ECE"] == pytest.approx(ece(probs[at], y[at]))
        assert row["hallucination @0.8"] == pytest.approx(hallucination_rate(probs[at], y[at], tau=0.8))
        assert row["recall: q"] == pytest.approx(float((probs[at & (y == 1)].argmax(1) == 1).mean()))
    assert table.loc["difference", "accuracy"] == pytest.approx(abs(table.loc["x", "accuracy"] - table.loc["y", "accuracy"]))
    assert table.loc["ratio", "accuracy"] <= 1 and np.isnan(table.loc["difference", "items"])


def test_kamiran_calders_weights_make_the_label_independent_of_the_group():
    y, _, groups = _fixture(1, n=2000)
    w = kamiran_calders(y, groups)
    overall = (w * y).sum() / w.sum()
    for g in np.unique(groups):
        at = groups == g
        assert (w[at] * y[at]).sum() / w[at].sum() == pytest.approx(y.mean()) == pytest.approx(overall)
    assert w.sum() == pytest.approx(len(y))  # the weighted data keeps its size


def test_thresholds_per_group_close_an_equalized_odds_gap():
    rng = np.random.default_rng(0)

    def part(n):
        g = rng.choice(np.array(["m", "f"], dtype=object), n)
        y = rng.random(n) < 0.3
        score = np.clip(0.3 + 0.35 * y + rng.normal(0, 0.15, n) - np.where(g == "f", 0.2, 0.0), 0, 1)  # "f" scored lower throughout
        return g, y, score

    vg, vy, vs = part(3000)
    tg, ty, ts = part(3000)
    before = ts >= 0.5
    after = fit_thresholds(vs, vy, vg, ts, tg, constraint="equalized_odds", seed=0).astype(bool)
    gap_before = binary_gaps(ty, before, tg)["equalized_odds_difference"]
    gap_after = binary_gaps(ty, after, tg)["equalized_odds_difference"]
    assert gap_before > 0.2 and gap_after < 0.5 * gap_before
    with pytest.raises(DataError, match="no val items"):
        fit_thresholds(vs, vy, vg, ts, np.where(tg == "m", "m", "x"))
    with pytest.raises(DataError, match="unknown constraint"):
        fit_thresholds(vs, vy, vg, ts, tg, constraint="parity")


def _biased_table(seed: int = 0, n: int = 1200) -> Dataset:
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["female", "male"], dtype=object), n, p=[0.4, 0.6])
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = (x1 + 0.5 * x2 + np.where(sex == "male", 0.8, -0.4) + rng.normal(0, 0.6, n) > 0.9).astype(int)
    items = pd.DataFrame({"x1": x1, "x2": x2, "sex": sex})
    meta = pd.DataFrame({"sex": sex, "age": rng.integers(18, 80, n), "instance_weight": rng.random(n)})
    return Dataset("biased", "tabular", items, y, ["low", "high"], stratified_split(y, val=0.25, test=0.25, seed=seed), meta)


def test_sensitive_columns_and_groups():
    ds = _biased_table()
    assert sensitive_columns(ds) == ["sex", "age"]
    ages = sensitive_groups(ds, np.arange(len(ds)), "age")
    assert len(set(ages)) == 4 and all(a.startswith("age ") for a in ages)
    assert set(sensitive_groups(ds, np.arange(5), "sex")) <= {"female", "male"}
    with pytest.raises(DataError, match="no column 'race'"):
        sensitive_groups(ds, np.arange(5), "race")


def test_a_run_is_measured_by_group_and_re_weighting_trains_a_second_run_to_compare(store, home):
    ds = _biased_table()
    vid = store.save_dataset(ds, source="upload:biased.csv")
    run_id, status = _run(store, version_id=vid, model="auto", epochs=15, batch_size=32, lr=1e-2)
    assert status == "finished"
    rec = run_fairness(store, run_id, "sex", constraint="equalized_odds")
    assert rec["positive"] == 1 and rec["n"] == int((ds.split == 2).sum())  # "high" is the rarer class
    table = table_of(rec)
    assert list(table.index) == ["female", "male", "difference", "ratio"] and table.loc["female", "items"] > 0
    gaps = rec["gaps"]["equalized_odds_difference"]
    assert gaps["a"] > 0 and gaps["a_low"] <= gaps["a"] <= gaps["a_high"]
    change = rec["thresholds"]["change"]["equalized_odds_difference"]
    assert change["b"] < change["a"]  # thresholds per group narrow the gap on test
    assert set(rec["thresholds"]["after_by_group"]) == {"female", "male"}
    kept = load(RunFiles(run_id, home=home))["sex"]
    assert kept["gaps"] == rec["gaps"] and kept["thresholds"] == rec["thresholds"]
    pd.testing.assert_frame_equal(table_of(kept), table)  # the missing cells (NaN) come back as NaN
    rows = fairness_rows([("#1", rec)])
    assert len(rows) == 2 and "thresholds per group (equalized odds)" in rows["run"].iloc[1]
    # re-weighting: a new version the importance sampler trains on
    new = reweighed_version(store, vid, "sex")
    weighted = store.load_dataset(new)
    w = weighted.meta["importance_weight"].to_numpy()
    train = weighted.split == 0
    assert (w[~train] == 1).all() and w[train].mean() == pytest.approx(1.0) and w[train].std() > 0
    assert store.version(new).params == {"fairness": {"reweigh": "sex"}}
    again, status = _run(
        store, version_id=new, model="auto", epochs=15, batch_size=32, lr=1e-2, mitigations={"resample": {"method": "importance"}}
    )
    assert status == "finished", store.run(again).message
    assert run_fairness(store, again, "sex")["gaps"]["equalized_odds_difference"]["a"] >= 0
    text = Dataset("t", "text", np.array(["a", "b"] * 5, dtype=object), np.arange(10) % 2, ["x", "y"], np.zeros(10, np.int8))
    with pytest.raises(DataError, match="no column 'sex'"):
        sensitive_groups(text, np.arange(3), "sex")


def test_the_runs_page_measures_by_group_fits_thresholds_and_queues_a_re_weighted_run(home):
    from core.report.html import build_report
    from core.store import Store
    from tests.test_train_pages import _stop_all, open_page

    store = Store(home)
    vid = store.save_dataset(_biased_table(), source="upload:biased.csv")
    first, status = _run(store, version_id=vid, model="auto", epochs=10, batch_size=32, lr=1e-2)
    assert status == "finished"
    at = open_page("app_pages/runs.py")
    assert at.selectbox(key="rn_fa_column").options == ["sex", "age"]
    assert any("Not measured by this column yet" in c.value for c in at.caption)
    at.selectbox(key="rn_fa_constraint").set_value("equalized_odds")
    at.button(key=f"rn_fa_go_{first}").click().run()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    assert (
        "Positive class **high**: equalized odds difference" in text
        and "With a threshold per group fitted on val for equalized odds" in text
    )
    assert at.selectbox(key="rn_fa_constraint").value == "equalized_odds"
    at.button(key=f"rn_fa_rw_{first}").click().run()
    assert not at.exception, at.exception
    assert any("re-weighted by sex" in s.value for s in at.success)
    second = max(r.id for r in store.runs())
    assert store.run(second).config["mitigations"]["resample"]["method"] == "importance"
    assert store.version(store.run(second).version_id).params == {"fairness": {"reweigh": "sex"}}
    _stop_all(store)
    page = build_report(store, [first])
    assert "id='fairness'" in page and "By sex" in page and "thresholds per group (equalized odds)" in page


def test_a_re_weighted_run_is_compared_with_the_plain_one_on_the_same_items(store, home):
    from core.fairness.evaluate import change_rows, paired_change
    from core.fairness.mitigate import reweighed_config

    vid = store.save_dataset(_biased_table(1), source="upload:biased.csv")
    plain, status = _run(store, version_id=vid, model="auto", epochs=8, batch_size=32, lr=1e-2)
    assert status == "finished"
    new = reweighed_version(store, vid, "sex")
    cfg = reweighed_config(store, plain, new, "sex")
    assert cfg.mitigations.resample.method == "importance" and "re-weighted by sex" in cfg.name
    again = store.create_run(new, cfg.to_dict())
    from core.train.worker import train_run

    assert train_run(store, again) == "finished"
    change = paired_change(store, plain, again, "sex")
    assert change is not None and set(change) == {"equalized_odds_difference", "demographic_parity_difference", "accuracy"}
    for v in change.values():
        assert v["low"] <= v["delta"] <= v["high"] and v["delta"] == pytest.approx(v["b"] - v["a"])
    assert paired_change(store, plain, plain, "sex")["accuracy"]["delta"] == 0
    assert "→" in change_rows([("#2", change)]).iloc[0]["equalized odds difference"]
    other = store.save_dataset(_biased_table(2), source="upload:other.csv")  # other items: no paired change
    third, _ = _run(store, version_id=other, model="auto", epochs=2, batch_size=32, lr=1e-2)
    assert paired_change(store, plain, third, "sex") is None
