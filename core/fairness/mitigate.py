"""Two fixes for a gap between groups, each kept with what it changed.

- ``kamiran_calders``: re-weighting by group and label (Kamiran & Calders 2012): each train item
  weighs ``P(group) · P(label) / P(group, label)``, so in the weighted train data the label no longer
  depends on the group. ``reweighed_version`` stores the weights in a new version's
  ``importance_weight`` column — the column the ``importance`` sampler draws by
  (``core.mitigate.sampler.ItemWeighted``), the seam the Shift page's weights use too.
- ``fit_thresholds``: a decision threshold per group for a two-class task (fairlearn's
  ``ThresholdOptimizer`` with the run's val probability of the positive class as its score, fitted on
  val under an equalized-odds or demographic-parity constraint, applied to test). Its decisions are
  randomised between two thresholds where the constraint needs it; seeded.

Torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import DataError

if TYPE_CHECKING:
    from core.store import Store

CONSTRAINTS = {"equalized_odds": "equalized odds", "demographic_parity": "demographic parity"}


def kamiran_calders(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Weights (n,): P(g) · P(y) / P(g, y) for each item's group g and label y."""
    y, g = np.asarray(labels), np.asarray(groups)
    n = len(y)
    if n == 0:
        return np.zeros(0)
    w = np.empty(n, dtype=np.float64)
    for gv in np.unique(g):
        in_g = g == gv
        for yv in np.unique(y):
            both = in_g & (y == yv)
            if both.any():
                w[both] = in_g.mean() * (y == yv).mean() / both.mean()
    return w


def reweighed_version(store: Store, version_id: int, column: str) -> int:
    """A new version of ``version_id`` whose train items carry Kamiran–Calders weights by ``column``
    and label (``importance_weight``; 1 elsewhere); returns its id."""
    from core.fairness.groups import sensitive_groups
    from core.shift.weights import weighted_version

    ds = store.load_dataset(version_id)
    train = np.flatnonzero((ds.split == 0) & ds.labelled)
    if len(train) != int((ds.split == 0).sum()):
        raise DataError("this version has unlabelled train items; re-weighting by label needs every train item labelled.")
    w = kamiran_calders(ds.labels[train], sensitive_groups(ds, train, column))
    return weighted_version(
        store, version_id, w / w.mean(), note=f"Re-weighted by {column} and label (Kamiran & Calders)",
        params={"fairness": {"reweigh": column}}, source=f"fairness:{version_id}",
    )  # fmt: skip


def _scores() -> Any:
    """A fitted "classifier" whose positive-class probability is its input's first column: lets
    fairlearn's ThresholdOptimizer work on a finished run's stored probabilities."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Scores(ClassifierMixin, BaseEstimator):
        def fit(self, x: Any, y: Any) -> Scores:
            self.classes_ = np.array([0, 1])
            return self

        def predict_proba(self, x: Any) -> np.ndarray:
            s = np.asarray(x, dtype=np.float64)[:, 0]
            return np.c_[1 - s, s]

        def predict(self, x: Any) -> np.ndarray:
            return (np.asarray(x, dtype=np.float64)[:, 0] >= 0.5).astype(int)

    return Scores().fit(None, None)


def fit_thresholds(val_scores: np.ndarray, val_y: np.ndarray, val_groups: np.ndarray, test_scores: np.ndarray, test_groups: np.ndarray,
                   *, constraint: str = "equalized_odds", seed: int = 0) -> np.ndarray:  # fmt: skip
    """Test decisions (n_test,) of 0 / 1 from per-group thresholds fitted on val. ``*_scores``: the
    positive class's probability; ``val_y``: 1 for the positive class."""
    from fairlearn.postprocessing import ThresholdOptimizer

    if constraint not in CONSTRAINTS:
        raise DataError(f"unknown constraint {constraint!r}; choose {' or '.join(CONSTRAINTS)}.")
    missing = sorted(set(np.unique(test_groups)) - set(np.unique(val_groups)))
    if missing:
        raise DataError(f"group(s) {missing} have no val items to fit a threshold on; choose a column whose groups all appear in val.")
    for g in np.unique(val_groups):
        if len(np.unique(np.asarray(val_y)[val_groups == g])) < 2:
            raise DataError(f"group {g!r} has val items of one class only: no threshold can be fitted for it. Choose another column.")
    opt = ThresholdOptimizer(
        estimator=_scores(), constraints=constraint, predict_method="predict_proba", prefit=True, objective="accuracy_score"
    )
    opt.fit(np.asarray(val_scores)[:, None], np.asarray(val_y).astype(int), sensitive_features=np.asarray(val_groups))
    return np.asarray(opt.predict(np.asarray(test_scores)[:, None], sensitive_features=np.asarray(test_groups), random_state=seed)).astype(
        int
    )


def reweighed_config(store: Store, run_id: int, version_id: int, column: str) -> Any:
    """Run ``run_id``'s settings on the re-weighted version ``version_id``, drawing train items by
    their weights (the ``importance`` sampler) — the run to compare against the first."""
    import dataclasses

    from core.train.config import RunConfig

    base = RunConfig.from_dict(store.run(run_id).config)
    mit = dataclasses.replace(base.mitigations, resample=dataclasses.replace(base.mitigations.resample, method="importance"))
    name = f"{base.display_name()} · re-weighted by {column}"
    return dataclasses.replace(base, version_id=int(version_id), mitigations=mit, name=name)
