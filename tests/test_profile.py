"""Profile figures against values computed by hand on tiny fixtures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.data import Dataset
from core.data.profile import balance, class_counts, duplicates, profile


def test_balance_matches_hand_computed_values():
    b = balance(np.array([6, 2, 0]))
    assert b.imbalance_ratio == 3.0  # 6 / 2, the empty class is reported as missing instead
    # p = (0.75, 0.25): H = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.562335…; / ln 3
    assert b.normalised_entropy == pytest.approx(0.5623351446 / math.log(3), abs=1e-9)
    assert b.effective_classes == pytest.approx(math.exp(0.5623351446), abs=1e-9)
    # Σ|xi − xj| over ordered pairs = 2·(4 + 6 + 2) = 24; G = 24 / (2 · 3² · 8/3) = 0.5
    assert b.gini == pytest.approx(0.5)
    # (1 − 0.999⁶)/0.001 + (1 − 0.999²)/0.001 = 5.985020 + 1.999
    assert b.effective_number == pytest.approx(5.98501998 + 1.999, abs=1e-6)
    assert b.missing == [2]
    assert b.thresholds == (100, 20)  # the one rule, never scaled to the data (core.metrics.groups)
    assert list(b.groups) == ["tail", "tail", "tail"]


def test_balanced_counts_are_perfectly_balanced():
    b = balance(np.array([50, 50, 50, 50]))
    assert b.imbalance_ratio == 1.0
    assert b.normalised_entropy == pytest.approx(1.0)
    assert b.gini == 0.0
    assert b.effective_classes == pytest.approx(4.0)


def test_single_present_class_has_infinite_ratio():
    b = balance(np.array([10, 0]))
    assert math.isinf(b.imbalance_ratio)
    assert b.normalised_entropy == 0.0


def test_long_tail_groups_with_literature_thresholds():
    b = balance(np.array([1000, 150, 100, 60, 20, 19, 3]))
    assert b.thresholds == (100, 20)
    assert list(b.groups) == ["head", "head", "medium", "medium", "medium", "tail", "tail"]


def _text_dataset() -> Dataset:
    texts = ["good film", "good film", "bad film", "so so", "great", "awful", "great", "meh", "", "nice"]
    labels = [0, 0, 1, 2, 0, 1, 1, 2, 0, 0]
    split = [0, 0, 0, 0, 0, 0, 2, 1, 0, 2]
    meta = pd.DataFrame({"domain": ["a", "a", "b", "b", "a", "b", "a", "b", None, "a"]})
    return Dataset("t", "text", np.array(texts, dtype=object), labels, ["pos", "neg", "mid"], split, meta)


def test_duplicates_within_and_across_splits_and_conflicts():
    d = duplicates(_text_dataset())
    # groups: "good film" ×2 (train, same label), "great" ×2 (train + test, labels 0 and 1)
    assert d.n_duplicate_items == 2
    assert d.leaks == {"train–test": 1, "train–val": 0, "val–test": 0}
    assert d.n_conflicting_groups == 1
    first = d.groups.iloc[0]  # leaks sort first
    assert first["items"] == [4, 6] and first["splits"] == ["test", "train"] and first["labels"] == [0, 1]
    assert bool(first["leak"]) and bool(first["conflict"])
    second = d.groups.iloc[1]
    assert second["items"] == [0, 1] and not second["leak"] and not second["conflict"]


def test_profile_counts_missing_values_empty_texts_and_slices():
    p = profile(_text_dataset())
    assert p.counts.loc["pos"].tolist() == [4, 0, 1, 5]  # train, val, test, all
    assert p.counts.loc["neg"].tolist() == [2, 0, 1, 3]
    assert p.counts.loc["mid"].tolist() == [1, 1, 0, 2]
    assert p.train.counts.tolist() == [4, 2, 1]
    assert p.train.imbalance_ratio == 4.0
    assert p.missing_values.to_dict("records") == [{"column": "domain", "missing": 1, "share": 0.1}]
    assert p.empty_texts.tolist() == [8]
    assert p.text_lengths.loc["words", "max"] == 2 and p.text_lengths.loc["characters", "max"] == 9
    table = p.slices["domain"]
    assert table.loc["a", ("class", "pos")] == 4  # items 0, 1, 4, 9 and table.loc["b", ("class", "neg")] == 2
    assert table.loc["(missing)", ("all", "all")] == 1
    assert table[("split", "train")].sum() == 7


def test_class_counts_on_image_dataset_and_image_stats():
    items = np.zeros((4, 5, 3), np.uint8)
    items[1] = 255
    ds = Dataset("i", "image", items, [0, 1, 1, 1], ["x", "y"], [0, 0, 2, 0])
    counts = class_counts(ds)
    assert counts.to_dict("list") == {"train": [1, 2], "val": [0, 0], "test": [0, 1], "all": [1, 3]}
    p = profile(ds)
    assert p.image_stats == {"height": 5, "width": 3, "channels": 1, "mean_intensity": 255 / 4}
    # items 0, 2, 3 are identical (all zeros) across train and test
    assert p.duplicates.n_duplicate_items == 2 and p.duplicates.leaks["train–test"] == 1
