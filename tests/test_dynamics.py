"""Training dynamics (core.train.dynamics) and the scores made from them (core.select.scores)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data import Dataset
from core.data.demos import load_digits_8x8
from core.errors import DataError
from core.select import scores as S
from core.store import RunFiles
from core.train.dynamics import Dynamics
from tests.test_train import _run

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


def test_dynamics_keep_each_items_probability_rightness_el2n_and_forgetting():
    d = Dynamics(4, torch.device("cpu"))
    big = 10.0
    # epoch 0: item 0 right (class 1), item 1 wrong, item 2 drawn twice (right, then wrong), item 3 not drawn
    d.record(torch.tensor([0, 1, 2]), torch.tensor([[0, big], [big, 0], [0, big]]), torch.tensor([1, 1, 1]))
    d.record(torch.tensor([2]), torch.tensor([[big, 0.0]]), torch.tensor([1]))
    d.end_epoch()
    p, right, el2n = d.epochs[0]
    assert p[0] == pytest.approx(1.0, abs=1e-3) and p[1] == pytest.approx(0.0, abs=1e-3) and p[2] == pytest.approx(0.5, abs=1e-3)
    assert right.tolist()[:3] == [1.0, 0.0, 0.5] and np.isnan(p[3]) and np.isnan(right[3])
    assert el2n[1] == pytest.approx(np.sqrt(2), abs=1e-3) and el2n[0] == pytest.approx(0.0, abs=1e-3)
    # epoch 1: item 0 now wrong (a second forgetting event overall), soft targets are not recorded
    d.record(torch.tensor([0]), torch.tensor([[big, 0.0]]), torch.tensor([1]))
    d.record(torch.tensor([1]), torch.tensor([[0.0, big]]), torch.tensor([[0.3, 0.7]]))
    d.end_epoch()
    out = d.arrays(np.array([0, 1, 2]), np.array([10, 11, 12]))
    assert out["rows"].tolist() == [10, 11, 12] and out["p_given"].shape == (2, 3) and out["p_given"].dtype == np.float16
    assert out["forgetting"].tolist() == [1, 0, 1] and out["presentations"].tolist() == [2, 1, 2]


@pytest.mark.parametrize("repeats", [False, True])
def test_batches_read_together_give_what_reading_each_batch_gives(repeats):
    rng = np.random.default_rng(0)
    n, k = 200, 4
    together, one_by_one = Dynamics(n, torch.device("cpu")), Dynamics(n, torch.device("cpu"))
    one_by_one.WINDOW = 1
    for _ in range(3):  # epochs
        order = rng.choice(n, size=2 * n, replace=True) if repeats else rng.permutation(n)
        for start in range(0, len(order), 16):
            rows = torch.from_numpy(order[start : start + 16])
            logits, y = (
                torch.from_numpy(rng.normal(size=(len(rows), k)).astype(np.float32)),
                torch.from_numpy(rng.integers(0, k, len(rows))),
            )
            together.record(rows, logits, y)
            one_by_one.record(rows, logits, y)
        assert torch.allclose(together.count, one_by_one.count)  # the count reads what is waiting
        together.end_epoch()
        one_by_one.end_epoch()
    a, b = together.arrays(np.arange(n), np.arange(n)), one_by_one.arrays(np.arange(n), np.arange(n))
    for key in a:
        np.testing.assert_allclose(a[key].astype(np.float64), b[key].astype(np.float64), atol=1e-3)
    assert a["forgetting"].sum() > 0


def test_scores_read_the_data_map_el2n_and_forgetting():
    dyn = {
        "rows": np.array([5, 6, 7]),
        "p_given": np.array([[0.9, 0.1, 0.2], [0.95, 0.1, 0.9], [0.97, 0.05, 0.1]], np.float16),
        "right": np.array([[1, 0, 0], [1, 0, 1], [1, 0, 0]], np.float16),
        "el2n": np.array([[0.1, 1.2, 1.0], [0.05, 1.3, 0.2], [0.04, 1.3, 1.1]], np.float16),
        "forgetting": np.array([0, 0, 1], np.int32),
        "presentations": np.array([3, 3, 3], np.int32),
    }
    m = S.data_map(dyn)
    assert m["row"].tolist() == [5, 6, 7] and m["region"].tolist() == ["easy", "hard to learn", "ambiguous"]
    assert m.loc[0, "confidence"] == pytest.approx(np.mean([0.9, 0.95, 0.97]), abs=1e-3)
    assert S.el2n(dyn).tolist() == pytest.approx([0.1, 1.2, 1.0], abs=1e-3)  # the first fifth of 3 epochs: epoch 0
    assert S.forgetting(dyn).tolist() == [0.0, 2.0, 1.0]  # item 6 was never right: above every other
    with pytest.raises(DataError, match="no training dynamics"):
        S.data_map(None)


def test_a_run_keeps_its_dynamics_and_they_point_at_the_flipped_labels(store, home):
    ds = load_digits_8x8().dataset
    rng = np.random.default_rng(0)
    train = np.flatnonzero(ds.split == 0)
    flipped = rng.choice(train, len(train) // 5, replace=False)
    labels = ds.labels.copy()
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10
    noisy = Dataset("digits, 20 % flipped", "image", ds.items, labels, ds.class_names, ds.split)
    vid = store.save_dataset(noisy, source="upload:digits")
    run_id, status = _run(store, version_id=vid, epochs=6)
    assert status == "finished"
    dyn = RunFiles(run_id, home=home).dynamics()
    assert dyn is not None and dyn["p_given"].shape == (6, len(train)) and sorted(dyn["rows"].tolist()) == train.tolist()
    assert (dyn["presentations"] >= 5).all() and (dyn["presentations"] <= 6).all()  # a last batch of one is dropped
    m = S.data_map(dyn).set_index("row")
    is_flipped = m.index.isin(flipped)
    assert m.loc[is_flipped, "confidence"].mean() < m.loc[~is_flipped, "confidence"].mean() - 0.2
    hard = m["region"] == "hard to learn"
    assert hard[is_flipped].mean() > 3 * hard[~is_flipped].mean()
    e = S.el2n(dyn, epochs=2)
    assert e[np.isin(dyn["rows"], flipped)].mean() > e[~np.isin(dyn["rows"], flipped)].mean()

    # Diagnose's "training dynamics" source: the hard-to-learn train items, least confident first
    from core.diagnose.label_issues import LabelIssues
    from core.diagnose.pipeline import label_issues_from_dynamics

    k = noisy.n_classes
    probe = LabelIssues(
        np.zeros(len(noisy), bool),
        np.ones(len(noisy)),
        noisy.labels.copy(),
        np.zeros(0, np.int64),
        np.eye(k),
        np.zeros(k),
        np.zeros(k),
        np.zeros((k, k)),
    )
    issues, judged = label_issues_from_dynamics(noisy, run_id, probe, home=home)
    assert judged == len(train) and np.isnan(issues.score[noisy.split != 0]).all() and not issues.is_issue[noisy.split != 0].any()
    assert (np.diff(issues.score[issues.rank]) >= 0).all()
    assert np.isin(issues.rank, flipped).mean() > 0.5  # most flagged items are flipped ones
    assert label_issues_from_dynamics(noisy, run_id + 99, probe, home=home) is None


def test_a_window_is_read_in_runs_that_never_repeat_an_earlier_batchs_position():
    from core.train.dynamics import _runs_without_repeats

    t = lambda *v: torch.tensor(v)
    # 3 repeats 0's position 1, 4 repeats 2's position 7 (and 3's 9); a repeat within one batch does not cut
    batches = [t(1, 2), t(3, 3), t(7, 8), t(1, 9), t(7, 9)]
    assert _runs_without_repeats(batches) == [slice(0, 3), slice(3, 4), slice(4, 5)]
    assert _runs_without_repeats([t(0, 1), t(2, 3), t(4, 5)]) == [slice(0, 3)]
    assert _runs_without_repeats([t(5)]) == [slice(0, 1)] and _runs_without_repeats([]) == []
