"""AppTest of the Selection page: a run's data map, a kept version, a keep-x % sweep through the
app's runner, the labelling queue saving a version, and the loop on known labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data import Dataset
from core.data.splits import stratified_split
from core.store import Store
from core.train.config import RunConfig
from core.train.worker import train_run
from tests.test_train_pages import open_page, wait_for
from ui.common import CURRENT

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


def table(store: Store, *, pool: int = 0) -> int:
    """Three overlapping classes in four columns, 10 % of train labels flipped; ``pool`` train items unlabelled."""
    rng = np.random.default_rng(0)
    n = 900
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4)) + y[:, None] * 1.2
    split = stratified_split(y, val=0.15, test=0.25)
    labels = y.copy()
    train = np.flatnonzero(split == 0)
    flip = rng.choice(train, len(train) // 10, replace=False)
    labels[flip] = (labels[flip] + 1) % 3
    labels[train[:pool]] = -1
    df = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    return store.save_dataset(Dataset("three", "tabular", df, labels, ["low", "mid", "high"], split), source="upload:three.csv")


def titles(at) -> list[str]:
    return [c.proto.spec for c in at.get("plotly_chart")]


@pytest.mark.slow
def test_a_data_map_a_kept_version_and_a_sweep_through_the_app(home):
    store = Store(home)
    vid = table(store)
    at = open_page("app_pages/select.py")
    assert any("No finished run on this version kept its training dynamics" in i.value for i in at.info)
    assert at.selectbox(key="se_score").options == ["random (the baseline)"]

    cfg = RunConfig(version_id=vid, model="auto", epochs=6, batch_size=32, lr=1e-2)
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished"
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="se_run").value == run_id
    regions = {m.label: int(m.value.replace(",", "")) for m in at.metric}
    assert sum(regions.values()) == int((store.load_dataset(vid).split == 0).sum()) and regions["Hard to learn"] > 0
    assert any("Data map" in t for t in titles(at))

    at.selectbox(key="se_score").set_value("ccs")
    at.run()
    assert not at.slider(key="se_hard_cut").disabled
    at.slider(key="se_hard_cut").set_value(0.25)
    at.button(key="se_keep").click()
    at.run()
    cut = [v for v in store.versions() if v.parent_id == vid]
    assert len(cut) == 1 and cut[0].params["keep"]["score"] == "ccs" and cut[0].params["keep"]["hard_cut"] == 0.25
    at.selectbox(key="se_score").set_value("el2n")
    at.run()
    assert at.slider(key="se_hard_cut").disabled  # EL2N ranks every item: nothing is set aside
    at.slider(key="se_fraction").set_value(0.4)
    at.button(key="se_keep").click()
    at.run()
    assert not at.exception, at.exception
    kept = [v for v in store.versions() if v.parent_id == vid and v.params["keep"]["score"] == "el2n"]
    assert len(kept) == 1 and kept[0].params["keep"]["score"] == "el2n" and kept[0].params["keep"]["run_id"] == run_id
    assert any(f"Saved version {kept[0].id}" in s.value for s in at.success)

    at.multiselect(key="se_sweep_scores").set_value(["ccs"])
    at.multiselect(key="se_sweep_fractions").set_value([0.3])
    at.number_input(key="se_sweep_epochs").set_value(2)
    at.run()
    at.button(key="se_sweep").click()
    at.run()
    assert not at.exception, at.exception
    sweep_runs = [r for r in store.runs() if r.version_id not in (vid, kept[0].id, cut[0].id)]
    assert len(sweep_runs) == 2 and all(r.config["epochs"] == 2 for r in sweep_runs)
    assert wait_for(lambda: all(store.run(r.id).status == "finished" for r in sweep_runs), timeout=240)
    at.run()
    assert not at.exception, at.exception
    assert sum("against the share kept" in t for t in titles(at)) == 3
    shown = next(d.value for d in at.dataframe if "vs random" in d.value.columns)
    assert set(shown["score"]) == {"ccs", "random"} and shown["macro-F1"].between(0, 1).all()
    assert any("2 of 2 runs finished" in p.proto.text for p in at.get("progress"))

    # settings stay; the hard-to-learn items open on Diagnose with the run's dynamics as the source
    at.switch_page("app_pages/data.py")
    at.run()
    at.switch_page("app_pages/select.py")
    at.run()
    assert at.selectbox(key="se_score").value == "el2n" and at.multiselect(key="se_sweep_scores").value == ["ccs"]
    at.button(key="se_review").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["dg_source"] == f"dynamics:{run_id}"
    assert any("Diagnose" in t.value for t in at.title)


def test_the_labelling_queue_saves_a_version_and_the_loop_draws_its_curves(home):
    store = Store(home)
    vid = table(store, pool=40)
    at = open_page("app_pages/select.py")
    assert at.selectbox(key="se_pool").value == "own" and any("40 items to choose from" in c.value for c in at.caption)
    at.number_input(key="se_k").set_value(3)
    at.run()
    at.button(key="se_propose").click()
    at.run()
    assert not at.exception, at.exception
    queue = at.session_state["se_queue_state"]
    assert len(queue["rows"]) == 3 and all(store.load_dataset(vid).labels[r] == -1 for r in queue["rows"])
    for label in ("mid", "high"):
        at.radio[-1].set_value(["low", "mid", "high"].index(label))
        next(b for b in at.button if b.label == "Label and next").click()
        at.run()
        assert not at.exception, at.exception
    assert any("2 of 3 labelled" in p.proto.text for p in at.get("progress"))
    at.button(key="se_save_labels").click()
    at.run()
    assert not at.exception, at.exception
    new = max(v.id for v in store.versions())
    out = store.load_dataset(new)
    first, second = queue["rows"][:2]
    assert out.labels[first] == 1 and out.labels[second] == 2 and int((out.labels == -1).sum()) == 38
    assert at.session_state[CURRENT] == new

    at.number_input(key="se_loop_k").set_value(20)
    at.number_input(key="se_loop_rounds").set_value(4)
    at.run()
    at.button(key="se_loop").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Accuracy against labels spent" in t for t in titles(at))
    assert any("random's final accuracy" in m.value for m in at.markdown)
