"""Numbers the Train page shows under the mitigation knobs: the train split's classes by name, the
items an augmentation preview draws, and how many train items in-run cleaning by plan changes."""

from __future__ import annotations

import numpy as np

from core.data.dataset import Dataset
from core.data.profile import profile
from core.mitigate.in_run_cleaning import train_changes
from core.mitigate.preview import preview_items, train_classes
from core.mitigate.settings import Cleaning


def _ds() -> Dataset:
    # class a: 300 train items, b: 4 (the tail), c: none in train (2 in test)
    labels = np.array([0] * 304 + [1] * 6 + [2] * 2)
    split = np.array([0] * 300 + [2] * 4 + [0] * 4 + [1] * 2 + [2] * 2)
    items = np.arange(len(labels) * 4, dtype=np.uint8).reshape(-1, 2, 2)
    return Dataset("toy", "image", items, labels, ["a", "b", "c"], split)


def test_train_classes_name_the_counts_the_tail_and_the_absent():
    ds = _ds()
    classes = train_classes(profile(ds).train, ds.class_names)
    assert classes.counts == {"a": 300, "b": 4} and classes.tail == ["b"] and classes.absent == ["c"]


def test_preview_items_come_from_train_and_the_chosen_classes():
    ds = _ds()
    picked = preview_items(ds, ["b"], seed=0, n=8)
    assert picked.tolist() == [304, 305, 306, 307]  # b's four train items: fewer than asked
    some = preview_items(ds, [], seed=3, n=5)
    assert len(some) == 5 and (np.diff(some) > 0).all() and (ds.split[some] == 0).all()
    assert preview_items(ds, [], seed=3, n=5).tolist() == some.tolist()  # the seed decides
    assert preview_items(ds, ["unknown"], seed=3, n=5).tolist() == some.tolist()  # no class of this dataset: all


def test_train_changes_by_plan_count_train_items_only():
    ds = _ds()
    plan = Cleaning(action="drop", source="plan", plan_drop=[0, 1, 300, 301], plan_relabel={"2": 1, "308": 0, "309": 1})
    assert train_changes(plan, ds) == (2, 1)  # 300 and 301 are test items; 308 and 309 val
    assert train_changes(Cleaning(), ds) == (0, 0)
