"""AppTest of the Diagnose page: run the diagnosis, act on suspects (one click reruns only the review
panels), bulk decisions, save a cleaning, see why its suspects changed, undo it with the reviews back."""

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
    assert len(at.get("plotly_chart")) == 2  # noise matrix and rates: only the open tab runs
    at.session_state["dg_tab"] = "Embedding map"
    at.run()
    assert not at.exception, at.exception
    # the map's projections say how many items they draw: all of these, or a sample
    projection = at.radio(key="dg_map_method")
    assert projection.options == [f"PCA (all {len(ds):,} items)", f"t-SNE (all {len(ds):,} items)"]  # 1,798: under both limits
    assert not any(b.key and b.key.startswith(f"relabel_{vid}_") for b in at.button)  # the label tab is closed
    at.session_state["dg_tab"] = "Label issues"
    at.run()

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
    # why the suspect count changed: the dropped suspect, and what the new diagnosis flags
    why = next(i.value for i in at.info if f"than v{vid}" in i.value or f"as v{vid}" in i.value)
    assert "1 dropped by the cleaning" in why and "estimated label noise" in why
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
    # with the reviews of the undone plan as they were, not as open suspects
    plan = at.session_state[f"plan_{vid}"]
    assert (plan.drop, plan.relabel, plan.keep) == ({second}, {first: suggested}, {kept})
    assert any("dropped 1, relabelled 1, 1 reviewed and kept" in md.value for md in at.markdown)
    shown = {int(b.key.split("_")[-1]) for b in at.button if b.key and b.key.startswith(f"keep_{vid}_")}
    assert shown and not shown & {first, second, kept}  # hidden as reviewed


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
    at.session_state["dg_tab"] = "Embedding map"  # only the open tab runs
    at.run()
    for colour in ("label", "label quality", "flagged", "split"):
        at.radio(key="dg_map_colour").set_value(colour)
        at.run()
        assert not at.exception, (colour, at.exception)


def _synthetic(home, n: int = 3_000) -> int:
    """A version of ``n`` images and its diagnosis, made from arrays (no embedding), as the page finds it."""
    from benchmarks.bench_review import synthetic_version
    from core.diagnose.pipeline import DiagnoseConfig, _save, cache_path

    ds, d = synthetic_version(n)
    vid = Store(home).save_dataset(ds, source="bench:review")
    _save(cache_path(ds, DiagnoseConfig()), d)
    return vid


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/diagnose.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_click_changes_one_decision_and_the_page_state_stays(home):
    vid = _synthetic(home)
    at = _page()
    at.multiselect(key="dg_sus_classes").set_value([0, 1])
    at.number_input(key="dg_sus_page").set_value(2)
    at.run()
    shown = [int(b.key.split("_")[-1]) for b in at.button if b.key and b.key.startswith(f"keep_{vid}_")]
    assert len(shown) == 12
    before = {k: at.session_state[k] for k in ("dg_sus_classes", "dg_sus_page", "dg_sus_order", "dg_tab", "dg_k")}
    item = shown[4]
    at.button(key=f"keep_{vid}_{item}").click()
    at.run()
    assert not at.exception, at.exception
    plan = at.session_state[f"plan_{vid}"]
    assert (plan.keep, plan.drop, plan.relabel) == ({item}, set(), {})
    # the plan bar, drawn by the review panel into its slot above the tabs, counts the decision
    # (AppTest sends no fragment id, so here a click reruns the page; a browser reruns the panel only)
    assert any("dropped 0, relabelled 0, 1 reviewed and kept" in md.value for md in at.markdown)
    assert {k: at.session_state[k] for k in before} == before
    at.run()  # the whole page again: as it was, less the reviewed item
    assert not at.exception, at.exception
    assert at.number_input(key="dg_sus_page").value == 2 and at.multiselect(key="dg_sus_classes").value == [0, 1]
    again = [int(b.key.split("_")[-1]) for b in at.button if b.key and b.key.startswith(f"keep_{vid}_")]
    assert item not in again and again[:4] == shown[:4] and again[4:11] == shown[5:]


def test_review_shortcuts_move_through_the_queue(home):
    vid = _synthetic(home)
    at = _page()
    helps = {b.key: (b.proto.shortcut, b.help) for b in at.button if b.key and b.key.startswith("q_")}
    assert {k: v[0].upper() for k, v in helps.items()} == {"q_keep": "K", "q_relabel": "L", "q_drop": "D", "q_previous": "P", "q_next": "J"}
    assert all(f"(shortcut: {shortcut.upper()})" in words for shortcut, words in helps.values())
    rank = list(at.session_state[f"plan_{vid}"].decided)  # nothing decided yet
    assert rank == []
    first = at.session_state[f"review_cursor_{vid}"][0]
    at.button(key="q_next").click()
    at.run()
    second = at.session_state[f"review_cursor_{vid}"][0]
    assert second != first and not at.session_state[f"plan_{vid}"].decided  # next decides nothing
    at.button(key="q_drop").click()
    at.run()
    at.run()  # the cursor settles on the item that moved up
    plan = at.session_state[f"plan_{vid}"]
    assert plan.drop == {second} and at.session_state[f"review_cursor_{vid}"][0] not in (first, second)
    at.button(key="q_previous").click()
    at.run()
    assert at.session_state[f"review_cursor_{vid}"][0] == first


def test_bulk_decision_shows_its_count_then_applies_after_confirmation(home):
    from core.diagnose import review

    vid = _synthetic(home)
    at = _page()
    assert not any(getattr(w, "key", None) == "dg_bulk_classes" for w in at.multiselect)  # closed: not drawn
    at.session_state["bulk_panel_open"] = True  # open the "Bulk decisions by filter" expander
    at.run()
    assert not at.exception, at.exception
    at.multiselect(key="dg_bulk_classes").set_value([3])
    at.slider(key="dg_bulk_quality").set_value((0.0, 0.05))
    at.radio(key="dg_bulk_action").set_value("drop")
    at.run()
    assert not at.exception, at.exception
    from benchmarks.bench_review import synthetic_version
    from core.diagnose.cleaning import CleaningPlan

    ds, d = synthetic_version(3_000)
    expected = review.bulk_items(
        review.findings(d, d.issues, ds.labels), review.BulkFilter(classes=(3,), quality=(0.0, 0.05)), CleaningPlan()
    )
    assert 0 < len(expected) < d.issues.n_issues
    assert any(md.value.startswith(f"**Drop {len(expected):,} items**") for md in at.markdown)
    assert not at.session_state[f"plan_{vid}"].decided  # nothing yet
    at.button(key="bulk_apply").click()
    at.run()
    assert any(f"Apply this to {len(expected):,} items?" in w.value for w in at.warning)
    assert not at.session_state[f"plan_{vid}"].decided  # asked, not applied
    at.button(key="bulk_confirm").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[f"plan_{vid}"].drop == set(expected.tolist())
    assert any(f"dropped {len(expected):,}, relabelled 0" in md.value for md in at.markdown)


def test_a_large_versions_queue_starts_without_its_gallery(home, monkeypatch):
    from ui import diagnose_review

    vid = _synthetic(home)
    monkeypatch.setattr(diagnose_review, "GALLERY_UP_TO", 100)  # the synthetic version counts as large
    at = _page()
    assert at.toggle(key="dg_sus_gallery").value is False
    assert not any(b.key and b.key.startswith(f"keep_{vid}_") for b in at.button)  # no gallery: one item at a time
    at.button(key="q_keep").click()
    at.run()
    assert not at.exception, at.exception
    assert len(at.session_state[f"plan_{vid}"].keep) == 1
    at.toggle(key="dg_sus_gallery").set_value(True)
    at.run()
    assert len([b for b in at.button if b.key and b.key.startswith(f"keep_{vid}_")]) == diagnose_review.PER_PAGE
    at.run()  # the choice stays
    assert at.toggle(key="dg_sus_gallery").value is True
