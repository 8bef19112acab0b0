"""Post-hoc logit adjustment (Menon et al. 2021) as a decision: τ chosen on val only, written as its
own variant beside the plain answers."""

from __future__ import annotations

import numpy as np
import pytest

from core.compare.one_run import threshold_table
from core.metrics import macro_f1
from core.metrics.results import RunResults
from core.mitigate.checks import check
from core.mitigate.settings import Decision, Mitigations
from core.train.evaluate import LA_GRID, fit_logit_adjustment
from tests.test_train import _run

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


def _biased(n: int, counts: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced items whose logits carry the train prior, as a long-tailed model's do."""
    rng = np.random.default_rng(seed)
    k = len(counts)
    y = rng.integers(0, k, n)
    z = rng.normal(0, 1.0, (n, k)) + 1.5 * np.eye(k)[y] + np.log(counts / counts.sum())[None, :]
    return z, y


def test_tau_is_the_val_choice_that_undoes_the_prior():
    counts = np.array([1000, 300, 100, 30, 10])
    z_val, y_val = _biased(3000, counts, 0)
    tau = fit_logit_adjustment(z_val, y_val, counts)
    log_prior = np.log(counts / counts.sum())
    scores = {float(t): macro_f1((z_val - t * log_prior).argmax(1), y_val, len(counts)) for t in LA_GRID}
    assert tau == max(scores, key=lambda t: (scores[t], -t)) and 0.75 <= tau <= 1.25  # the prior's own weight, about 1
    z_test, y_test = _biased(3000, counts, 1)
    assert macro_f1((z_test - tau * log_prior).argmax(1), y_test, 5) > macro_f1(z_test.argmax(1), y_test, 5) + 0.05
    # a model without the prior in its logits keeps τ = 0; unknown rows (-1) are left out
    rng = np.random.default_rng(2)
    y = rng.integers(0, 5, 2000)
    plain = rng.normal(0, 1.0, (2000, 5)) + 1.5 * np.eye(5)[y]
    assert fit_logit_adjustment(plain, y, counts) <= 0.25
    assert fit_logit_adjustment(z_val, np.full(len(y_val), -1), counts) == 0.0


def test_a_run_reports_its_answers_after_logit_adjustment_beside_the_plain_ones(store):
    from core.data.demos import load_digits_8x8

    ds = load_digits_8x8().dataset
    keep = np.ones(len(ds), bool)
    for c, left in ((7, 8), (8, 6), (9, 4)):  # a long tail: three classes thinned in train
        rows = np.flatnonzero((ds.labels == c) & (ds.split == 0))
        keep[rows[left:]] = False
    vid = store.save_dataset(ds.subset(keep), source="upload:tail")
    run_id, status = _run(store, version_id=vid, epochs=4, mitigations={"decision": {"logit_adjustment": True}})
    assert status == "finished", store.run(run_id).message
    res = RunResults(store, run_id)
    assert res.variant_step("la") == res.result_step and "logit adjustment τ=" in store.run(run_id).message
    tau = res.summary()["logit_adjustment_tau"]
    assert tau in LA_GRID.tolist()
    table = threshold_table(res)
    assert table is not None and list(table.columns) == ["before", "after post-hoc logit adjustment"]
    assert np.isfinite(table.loc["macro_f1"]).all()
    m = Mitigations(decision=Decision(logit_adjustment=True))
    assert m.active == ["post-hoc logit adjustment"]
    assert (
        "post-hoc logit adjustment does not apply to token data" in check(m, modality="tokens", finetune="full", train_counts={"a": 5})[0]
    )
