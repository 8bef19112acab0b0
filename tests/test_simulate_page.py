"""AppTest of the Simulate page: a recipe previewed and saved, a bad recipe refused, a sweep run
through the app's runner, the detector graded against the truth."""

from __future__ import annotations

import pytest

from core.data import demos
from core.store import Store
from tests.test_train_pages import open_page, wait_for

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_a_recipe_is_previewed_saved_and_graded(home):
    store = Store(home)
    parent = demos.import_demo(store, "digits")
    at = open_page("app_pages/simulate.py")
    assert not at.exception, at.exception
    at.radio(key="sm_imbalance").set_value("long_tail")
    at.select_slider(key="sm_ratio").set_value(10)
    at.run()
    m = _metrics(at)
    assert int(m["Train items"].replace(",", "")) < 1445 and float(m["Imbalance ratio (given labels)"]) == pytest.approx(10, rel=0.15)
    assert m["Wrong train labels"] == "0"
    at.slider(key="sm_noise").set_value(0.3)
    at.run()
    assert int(_metrics(at)["Wrong train labels"].replace(",", "")) > 0
    assert any("long tail ×10" in c.value and "30% symmetric noise" in c.value for c in at.caption)
    at.button(key="simulate_create").click()
    at.run()
    assert not at.exception, at.exception
    child = max(v.id for v in store.versions())
    info = store.version(child)
    assert info.kind == "simulate" and info.parent_id == parent
    assert any("made it the current dataset" in s.value for s in at.success)
    # the current dataset is the simulated one: recipes start from its clean parent, and the detector can be graded
    assert any("was simulated from this one" in c.value for c in at.caption)
    at.button(key="simulate_check").click()
    at.run()
    assert not at.exception, at.exception
    m = _metrics(at)
    truth = int(store.load_dataset(child).meta["sim_noisy"].sum())
    assert int(m["Wrong labels (truth)"].replace(",", "")) == truth
    assert m["Precision"].endswith("%") and m["Recall"].endswith("%")


def test_a_recipe_that_cannot_train_is_refused_in_the_preview(home):
    store = Store(home)
    demos.import_demo(store, "digits")
    at = open_page("app_pages/simulate.py")
    at.multiselect(key="sm_drop").set_value([str(c) for c in range(9)])
    at.run()
    assert any("fewer than two to train on" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "simulate_create"]


def test_a_sweep_runs_through_the_app_and_draws_its_metrics(home):
    store = Store(home)
    demos.import_demo(store, "digits")
    at = open_page("app_pages/simulate.py")
    at.selectbox(key="sm_knob").set_value("noise")
    at.run()
    at.text_input(key="sm_sev_noise").set_value("0, 0.4")
    at.number_input(key="sm_epochs").set_value(1)
    at.run()
    at.button(key="simulate_sweep").click()
    at.run()
    assert not at.exception, at.exception
    sweep = store.sweeps()[0]
    assert [r["severity"] for r in sweep["runs"]] == [0.0, 0.4] and {r["arm"] for r in sweep["runs"]} == {"baseline"}
    assert wait_for(lambda: all(store.run(r["run_id"]).status == "finished" for r in sweep["runs"]), timeout=240)
    at.run()
    assert not at.exception, at.exception
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert sum("Hallucination rate" in t for t in titles) == 1 and sum("Macro-F1" in t for t in titles) == 1
    assert any("2 of 2 runs finished" in p.proto.text for p in at.get("progress"))
