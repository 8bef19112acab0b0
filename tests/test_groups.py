"""Head / medium / tail: the Data page's groups and the metrics' groups are the same for the same
train counts (core.metrics.groups), on a long tail and on a small balanced set."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from core import metrics as M
from core.data.demos import load_digits_8x8
from core.data.overview import groups_line
from core.data.profile import profile
from core.metrics.groups import group_counts, group_of_classes, rule_words
from core.simulate.corrupt import simulate
from core.simulate.recipe import Recipe
from core.train.config import RunConfig
from core.train.run_data import split_data


def _digits():
    return load_digits_8x8().dataset


def _long_tail():
    return simulate(_digits(), Recipe(imbalance="long_tail", ratio=30.0))


def _small_balanced():
    """36 items per digit (360 in all), every split kept: a small balanced set."""
    ds = _digits()
    rows = np.concatenate([np.flatnonzero(ds.labels == c)[:36] for c in range(ds.n_classes)])
    return ds.subset(np.sort(rows))


def _page_and_metric_groups(ds):
    """(the Data page's group per model class, the training loop's, the run's data)."""
    page = profile(ds).train.groups
    data = split_data(ds, RunConfig(version_id=1, model="small_cnn", seed=0))
    return [str(page[c]) for c in data.classes], group_of_classes(data.train_counts).tolist(), data


def _test_probs(ds, data):
    """Class probabilities of a logistic regression fitted on the run's train rows, on its test rows."""
    x = ds.items.reshape(len(ds), -1)[data.rows].astype(np.float64) / 255.0
    model = LogisticRegression(max_iter=300).fit(x[data.train], data.y[data.train])
    return model.predict_proba(x[data.test]), data.y[data.test]


@pytest.mark.parametrize("make", [_long_tail, _small_balanced], ids=["long tail", "small balanced"])
def test_data_page_groups_are_the_metrics_groups(make):
    ds = make()
    page, metric, data = _page_and_metric_groups(ds)
    assert page == metric
    # the ECE per group the training loop writes uses exactly the groups the page shows
    probs, y = _test_probs(ds, data)
    scored = M.summary(probs, y, train_counts=data.train_counts)
    by_page = M.ece_by_group(probs, y, np.array(page))
    for g in ("head", "medium", "tail"):
        assert scored[f"ece_{g}"] == pytest.approx(by_page[g], nan_ok=True)


def test_long_tail_has_all_three_groups_and_the_page_says_which():
    ds = _long_tail()
    prof = profile(ds)
    counts = prof.train.counts
    assert counts.max() / counts.min() == pytest.approx(30.0, rel=0.1)
    n = group_counts(prof.train.groups)
    assert n["head"] >= 1 and n["medium"] >= 1 and n["tail"] >= 1
    # every class with fewer than 20 train items is tail, whatever the size of the largest class
    assert [str(g) for g in prof.train.groups[counts < 20]] == ["tail"] * int((counts < 20).sum())
    assert f"{n['head']} head · {n['medium']} medium · {n['tail']} tail classes." in groups_line(prof.train)


def test_small_balanced_set_is_one_group_and_the_page_says_so():
    prof = profile(_small_balanced())
    counts = prof.train.counts
    assert counts.tolist() == [34, 27, 27, 30, 29, 31, 27, 28, 31, 27]  # the digits' own split of 36 per class
    assert group_counts(prof.train.groups) == {"head": 0, "medium": 10, "tail": 0}
    line = groups_line(prof.train)
    assert "0 head · 10 medium · 0 tail classes." in line and "Every class is medium" in line


def test_rule_words():
    assert rule_words() == "head: more than 100 train items; medium: 20–100; tail: fewer than 20"
    assert group_of_classes([101, 100, 20, 19, 0]).tolist() == ["head", "medium", "medium", "tail", "tail"]
