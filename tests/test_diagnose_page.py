"""AppTest of the Diagnose page: run the diagnosis, act on suspects, save a cleaning, undo it."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.store import Store
from tests.conftest import APP
from tests.test_diagnose import noisy_digits

pytestmark = pytest.mark.timeout(400)


def test_diagnose_act_save_and_undo(home):
    ds, _ = noisy_digits()
    store = Store(home)
    vid = store.save_dataset(ds, source="upload:digits.csv")
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("app_pages/diagnose.py")
    at.run()
    assert not at.exception, at.exception
    assert any("has not been diagnosed" in i.value for i in at.info)
    at.button(key="run_diagnosis").click()
    at.run()
    assert not at.exception, at.exception
    m = {x.label: x.value for x in at.metric}
    assert int(m["Suspected label errors"].replace(",", "")) > 100
    assert int(m["Duplicate clusters"]) >= 1 and m["Coverage gaps"] == "1"  # the leaked copy; class 9 absent from test
    assert len(at.get("plotly_chart")) >= 3  # noise matrix, noise rates, outlier histogram (+ map)
    # the map's projections say how many items they draw: all of these, or a sample
    projection = at.radio(key="map_method")
    assert projection.options == [f"PCA (all {len(ds):,} items)", f"t-SNE (all {len(ds):,} items)"]  # 1,798: under both limits

    relabel = [b for b in at.button if b.key and b.key.startswith(f"relabel_{vid}_")]
    drop = [b for b in at.button if b.key and b.key.startswith(f"drop_{vid}_")]
    first, second = int(relabel[0].key.split("_")[-1]), int(drop[1].key.split("_")[-1])
    suggested = at.selectbox(key=f"target_{vid}_{first}").value
    relabel[0].click()
    at.run()
    at.button(key=f"drop_{vid}_{second}").click()
    at.run()
    assert any("dropped 1, relabelled 1" in md.value for md in at.markdown)
    keep = [b for b in at.button if b.key and b.key.startswith(f"keep_{vid}_")]
    kept = next(int(b.key.split("_")[-1]) for b in keep if int(b.key.split("_")[-1]) not in (first, second))
    at.button(key=f"keep_{vid}_{kept}").click()
    at.run()
    assert any("1 reviewed and kept" in md.value for md in at.markdown)

    at.button(key="save_plan").click()
    at.run()
    assert not at.exception, at.exception
    versions = store.versions()
    assert [v.id for v in versions] == [vid, vid + 1]
    child = versions[-1]
    assert child.parent_id == vid and child.kind == "clean" and child.params["drop"] == [second]
    cleaned = store.load_dataset(child.id)
    assert len(cleaned) == len(ds) - 1
    row = int(np.flatnonzero(cleaned.meta["source_item"].to_numpy() == first)[0])
    assert cleaned.labels[row] == suggested  # the selectbox holds the class index
    assert any(f"Saved v{child.id}" in s.value for s in at.success)
    assert any("cleaned version" in i.value for i in at.info)
    # the child: its items keep their numbers, and what was reviewed (kept, relabelled) stays reviewed
    at.button(key="run_diagnosis").click()  # its embeddings are the parent's, by item content
    at.run()
    assert not at.exception, at.exception
    assert any("2 reviewed in the versions" in md.value for md in at.markdown)
    kept_row = int(np.flatnonzero(cleaned.item_ids() == kept)[0])
    assert at.session_state[f"plan_{child.id}"].decision(kept_row) == "keep"
    assert not any(b.key == f"keep_{child.id}_{kept_row}" for b in at.button)  # hidden as reviewed

    at.button(key="undo_clean").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["current_version"] == vid
    assert [v.id for v in store.versions()] == [vid] and store.version(child.id).archived
    assert any(f"back to v{vid}" in s.value for s in at.success)
    # the parent's diagnosis is cached: the page shows it again at once
    assert {x.label for x in at.metric} >= {"Suspected label errors"}


def test_label_issues_can_come_from_a_finished_run(home):
    from core.diagnose.pipeline import diagnose
    from core.train.config import RunConfig
    from core.train.worker import train_run

    ds, _ = noisy_digits()
    store = Store(home)
    vid = store.save_dataset(ds, source="upload:digits.csv")
    diagnose(ds)  # cached, as if the user had run it before
    run_id = store.create_run(vid, RunConfig(version_id=vid, model="mlp", epochs=8, batch_size=64).to_dict())
    assert train_run(store, run_id) == "finished"
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("app_pages/diagnose.py")
    at.run()
    probe = int({m.label: m.value for m in at.metric}["Suspected label errors"].replace(",", ""))
    at.radio(key="dg_source").set_value(run_id)
    at.run()
    assert not at.exception, at.exception
    from_run = int({m.label: m.value for m in at.metric}["Suspected label errors"].replace(",", ""))
    assert 0 < from_run < probe  # only the held-out test split is judged
    assert any(f"run #{run_id}" in c.value and "test items" in c.value for c in at.caption)
    label_tab = next(t for t in at.tabs if t.label == "Label issues")
    shown = [b.key for b in label_tab.button if b.key and b.key.startswith(f"relabel_{vid}_")]
    assert shown and all(ds.split[int(k.split("_")[-1])] == 2 for k in shown)


@pytest.mark.usefixtures("shared_embeddings")
def test_a_dataset_with_an_unlabelled_pool_diagnoses_its_labelled_items(home):
    from tests.test_mitigations import _digits_with_pool

    ds, hidden, _ = _digits_with_pool(0.3)
    Store(home).save_dataset(ds, source="upload:digits-pool")
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("app_pages/data.py")
    at.run()
    assert {m.label: m.value for m in at.metric}["Items"] == f"1,797 ({len(hidden):,} unlabelled)"
    at.switch_page("app_pages/diagnose.py")
    at.run()
    at.button(key="run_diagnosis").click()
    at.run()
    assert not at.exception, at.exception
    suspects = int({x.label: x.value for x in at.metric}["Suspected label errors"].replace(",", ""))
    assert 0 <= suspects < int(ds.labelled.sum())
    for colour in ("label", "label quality", "flagged", "split"):
        at.radio(key="map_colour").set_value(colour)
        at.run()
        assert not at.exception, (colour, at.exception)
