"""Cleaning plans: exact application, new versions, undo that archives and loses nothing and gives
the reviews back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data import Dataset
from core.diagnose.cleaning import CleaningPlan, reviewed_before, save_cleaned, saved_plan, starting_plan, undo, undo_with_reviews


def _ds() -> Dataset:
    return Dataset(
        "t",
        "text",
        np.array(list("abcdef"), dtype=object),
        [0, 1, 0, 1, 0, 1],
        ["x", "y"],
        [0, 0, 0, 1, 2, 2],
        pd.DataFrame({"domain": list("ppqqpq")}),
    )


def test_plan_last_decision_wins_and_applies_exactly():
    plan = CleaningPlan()
    plan.decide(1, "drop")
    plan.decide(2, "relabel", 1)
    plan.decide(3, "keep")
    plan.decide(1, "relabel", 0)  # changed my mind: relabel instead of drop
    plan.decide(4, "drop")
    assert plan.decision(1) == "relabel" and plan.decision(3) == "keep" and plan.decision(5) is None
    assert plan.summary() == "dropped 1, relabelled 2" and plan.n_changes == 3
    out = plan.apply(_ds())
    assert list(out.items) == ["a", "b", "c", "d", "f"]
    assert out.labels.tolist() == [0, 0, 1, 1, 1]
    assert out.meta["source_item"].tolist() == [0, 1, 2, 3, 5] and out.meta["domain"].tolist() == list("ppqqq")
    assert out.split.tolist() == [0, 0, 0, 1, 2]


def test_plan_rejects_bad_input():
    plan = CleaningPlan()
    with pytest.raises(ValueError, match="relabel needs the new class"):
        plan.decide(0, "relabel")
    with pytest.raises(ValueError, match="unknown action"):
        plan.decide(0, "burn")
    plan.decide(9, "drop")
    with pytest.raises(ValueError, match=r"items \[9\] are not in this dataset version"):
        plan.apply(_ds())


def test_save_cleaned_is_a_child_version_and_undo_archives_it(store):
    vid = store.save_dataset(_ds(), source="upload:t.csv")
    plan = CleaningPlan()
    with pytest.raises(ValueError, match="changes nothing yet"):
        save_cleaned(store, vid, plan)
    plan.decide(0, "drop")
    plan.decide(1, "relabel", 0)
    child = save_cleaned(store, vid, plan)
    info = store.version(child)
    assert info.parent_id == vid and info.kind == "clean" and info.note == "dropped 1, relabelled 1"
    assert info.params == {"drop": [0], "relabel": {"1": 0}, "kept": 0, "keep": [], "reviewed_ids": [1]}
    assert store.load_dataset(child).labels.tolist() == [0, 0, 1, 0, 1]
    assert store.load_dataset(vid).labels.tolist() == [0, 1, 0, 1, 0, 1]  # the parent is untouched
    assert undo(store, child) == vid
    assert [v.id for v in store.versions()] == [vid]  # hidden from pickers …
    assert store.version(child).archived and len(store.load_dataset(child)) == 5  # … but nothing is lost
    assert [v.id for v in store.versions(include_archived=True)] == [vid, child]
    with pytest.raises(ValueError, match="nothing to undo"):
        undo(store, vid)


def test_a_plan_that_leaves_one_class_is_refused(store):
    vid = store.save_dataset(_ds(), source="upload:t.csv")
    plan = CleaningPlan()
    for i in (1, 3, 5):
        plan.decide(i, "drop")
    with pytest.raises(ValueError, match="fewer than two classes"):
        save_cleaned(store, vid, plan)
    assert len(store.versions()) == 1


def test_keep_decisions_and_item_numbers_survive_a_saved_cleaning(store):
    vid = store.save_dataset(_ds(), source="upload:t.csv")
    plan = CleaningPlan()
    plan.decide(0, "drop")
    plan.decide(2, "keep")  # reviewed: the label is right after all
    plan.decide(4, "relabel", 1)
    child = save_cleaned(store, vid, plan)
    ds = store.load_dataset(child)
    assert ds.item_ids().tolist() == [1, 2, 3, 4, 5]  # the numbers of the import, not rows shifted by one
    kept_c, relabelled_e = 1, 3  # their rows in the child
    assert reviewed_before(store, child, ds) == {kept_c, relabelled_e}
    assert starting_plan(store, child, ds).decision(kept_c) == "keep"
    # a second cleaning on the child: reviews from both generations carry on to the grandchild
    again = starting_plan(store, child, ds)
    again.decide(0, "keep")  # item #1
    again.decide(4, "drop")  # item #5
    grandchild = save_cleaned(store, child, again)
    gds = store.load_dataset(grandchild)
    assert gds.item_ids().tolist() == [1, 2, 3, 4]
    assert {int(gds.item_ids()[r]) for r in reviewed_before(store, grandchild, gds)} == {1, 2, 4}
    assert reviewed_before(store, vid, store.load_dataset(vid)) == set()  # the parent is not changed


def test_plan_knows_its_decided_items_as_a_mask_and_copies_apart():
    plan = CleaningPlan()
    plan.decide(1, "drop")
    plan.decide(3, "relabel", 0)
    plan.decide(4, "keep")
    plan.decide(9, "keep")  # not in a 6-item version: left out of its mask
    assert plan.decided == {1, 3, 4, 9}
    assert plan.decided_mask(6).tolist() == [False, True, False, True, True, False]
    other = plan.copy()
    other.decide(1, "keep")
    assert plan.decision(1) == "drop" and other.decision(1) == "keep"


def test_undo_gives_back_the_reviews_of_the_plan_it_undoes(store):
    vid = store.save_dataset(_ds(), source="upload:t.csv")
    plan = CleaningPlan()
    plan.decide(0, "drop")
    plan.decide(2, "keep")
    plan.decide(5, "keep")
    plan.decide(4, "relabel", 1)
    child = save_cleaned(store, vid, plan)
    assert store.version(child).params["keep"] == [2, 5]
    parent, restored = undo_with_reviews(store, child)
    assert parent == vid and store.version(child).archived
    assert (restored.drop, restored.relabel, restored.keep) == ({0}, {4: 1}, {2, 5})
    assert [restored.decision(i) for i in range(6)] == ["drop", None, "keep", None, "relabel", "keep"]
    again = save_cleaned(store, vid, restored)  # saved again as it was: the same cleaned data
    assert store.load_dataset(again).labels.tolist() == store.load_dataset(child).labels.tolist()
    with pytest.raises(ValueError, match="not a cleaned version"):
        saved_plan(store, vid)


def test_a_version_saved_before_kept_rows_were_recorded_gives_them_back_from_item_ids(store):
    vid = store.save_dataset(_ds(), source="upload:t.csv")
    kept_and_relabelled = CleaningPlan(drop={0}, relabel={4: 1}, keep={2, 5})
    old_params = {"drop": [0], "relabel": {"4": 1}, "kept": 2, "reviewed_ids": [2, 4, 5]}  # no "keep"
    child = store.save_dataset(
        kept_and_relabelled.apply(_ds()),
        source="upload:t.csv",
        dataset_id=store.version(vid).dataset_id,
        parent_id=vid,
        kind="clean",
        note="dropped 1, relabelled 1",
        params=old_params,
    )
    restored = saved_plan(store, child)
    assert (restored.drop, restored.relabel, restored.keep) == ({0}, {4: 1}, {2, 5})
