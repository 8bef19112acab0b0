"""A reference and a target from the store: drift between them, and a finished run's estimates there.

- ``drift(reference, target)``: both tests of ``core.shift.detect`` on the embeddings the project
  caches (``core.embed``: MiniLM for text, the image backbone for images, the standardised columns
  for tables), plus the per-column tests for tables.
- ``run_on_target(store, run_id, target)``: the run's val probabilities at its result (kept by the
  worker) and its model applied to the target (``core.train.apply``) → ``core.shift.estimate``'s
  estimates, the truth beside them where the target has labels of the run's classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from core.data.dataset import Dataset
from core.errors import DataError
from core.metrics.hallucination import DEFAULT_TAU
from core.shift import detect as D
from core.shift.estimate import TargetEstimate, estimate_target

if TYPE_CHECKING:
    from core.store import Store


@dataclass(frozen=True)
class Drift:
    """The tests between one reference and one target."""

    tests: dict[str, D.ShiftTest]
    features: D.FeatureShift | None  # tables only
    embedding: str  # what the tests ran on, in words

    @property
    def shifted(self) -> bool:
        return any(t.shifted for t in self.tests.values()) or bool(self.features is not None and self.features.shifted)


def drift(
    reference: Dataset, target: Dataset, *, n_per_side: int = D.N_PER_SIDE, seed: int = 0, progress: Any = None, alpha: float = D.ALPHA
) -> Drift:
    """MMD and the domain classifier on cached embeddings (and per-column tests for tables)."""
    from core.embed.embeddings import resolve_backbone

    if reference.modality != target.modality:
        raise DataError(f"the reference holds {reference.modality} data and the target {target.modality}; compare data of one kind.")
    if reference.modality == "tokens":
        raise DataError("shift tests on token data are not available yet; pick a text, image or table dataset.")
    features = None
    x_ref, x_tgt = vectors(reference, target, progress=progress)
    if reference.modality == "tabular":
        features = D.feature_tests(reference.items, target.items, n_per_side=n_per_side, seed=seed, alpha=alpha)
        words = f"the {x_ref.shape[1]} standardised and one-hot columns"
    else:
        words = f"{resolve_backbone(reference)} embeddings"
    tests = {
        "mmd": D.mmd_test(x_ref, x_tgt, n_per_side=n_per_side, seed=seed, alpha=alpha),
        "domain_classifier": D.domain_classifier_test(x_ref, x_tgt, n_per_side=n_per_side, seed=seed, alpha=alpha),
    }
    return Drift(tests, features, words)


def vectors(reference: Dataset, *others: Dataset, progress: Any = None) -> list[np.ndarray]:
    """The rows the tests and weights read: cached embeddings (``core.embed``), or for tables the
    columns encoded by ``TabularEncoder`` fitted on the reference (every other table encoded as it is)."""
    from core.embed.embeddings import embed
    from core.models.tabular import TabularEncoder

    if reference.modality == "tabular":
        enc = TabularEncoder.fit(reference.items)
        return [enc.transform(d.items) for d in (reference, *others)]
    return [np.asarray(embed(d, progress=progress), dtype=np.float64) for d in (reference, *others)]


def covariate_version(store: Store, version_id: int, reference: Dataset, target: Dataset, *, words: str) -> int:
    """A new version whose train rows carry importance weights for ``target`` (``core.shift.weights``)."""
    from core.shift.weights import covariate_weights, weighted_version

    ds = store.load_dataset(version_id)
    x_ref, x_tgt, x_train = vectors(reference, target, ds.subset(np.flatnonzero(ds.split == 0)))
    w = covariate_weights(x_ref, x_tgt, x_train)
    return weighted_version(
        store, version_id, w, note=f"importance weights, covariate: {words}", params={"importance": {"kind": "covariate", "target": words}}
    )


def label_shift_version(store: Store, version_id: int, on: OnTarget, *, words: str) -> int:
    """A new version whose train rows carry their class's BBSE weight q/p for the target."""
    from core.shift.weights import label_weights, weighted_version

    ds = store.load_dataset(version_id)
    y = ds.labels[ds.split == 0]
    pos = {int(c): i for i, c in enumerate(on.classes.tolist())}
    model_y = np.array([pos.get(int(v), -1) for v in y.tolist()], dtype=np.int64)
    w = np.ones(len(y))
    known = model_y >= 0
    w[known] = label_weights(model_y[known], on.estimate.label_shift.weights)
    weights = {str(ds.class_names[int(c)]): round(float(v), 4) for c, v in zip(on.classes, on.estimate.label_shift.weights)}
    return weighted_version(
        store,
        version_id,
        w,
        note=f"importance weights, label shift: {words}",
        params={"importance": {"kind": "label", "class_weights": weights}},
    )


def run_val_probs(store: Store, run_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(val probabilities over the model's classes, val labels as positions in them (-1: a class
    the model lacks), the model's classes as dataset class indices) at the run's result."""
    from core.metrics.results import RunResults

    res = RunResults(store, run_id)
    step = res.result_step
    kept = None if step is None else res.files.model_probs(step, "val")
    if kept is None:
        raise DataError(f"run {run_id} kept no val probabilities at its result; train it again (runs keep them since this version).")
    rows, probs, classes = kept[0], kept[1].astype(np.float64), kept[2]
    ds = store.load_dataset(res.row.version_id)
    pos = {int(c): i for i, c in enumerate(classes.tolist())}
    labels = np.array([pos.get(int(y), -1) for y in ds.labels[rows].tolist()], dtype=np.int64)
    return probs / probs.sum(axis=1, keepdims=True), labels, classes


@dataclass(frozen=True)
class OnTarget:
    """A run's estimates on a target: ``estimate``, the model's ``classes`` (dataset class indices)
    and the target's labels as positions in them (-1: none or a class the model lacks) when known."""

    estimate: TargetEstimate
    classes: np.ndarray
    labels: np.ndarray | None


def run_on_target(store: Store, run_id: int, target: Dataset, *, tau: float = DEFAULT_TAU, labelled: bool = True) -> OnTarget:
    """``estimate_target`` for run ``run_id`` on ``target``; with ``labelled`` and labels on the
    target, the truth beside the estimates."""
    from core.train.apply import apply_run

    val_probs, val_labels, classes = run_val_probs(store, run_id)
    applied = apply_run(store, run_id, target)
    if not np.array_equal(applied.classes, classes):
        raise DataError(f"run {run_id}'s checkpoint and its val probabilities name different classes; train it again.")
    truth = None
    if labelled and (target.labels >= 0).any():
        truth = applied.labels_as_model_classes(np.where(target.labels >= 0, target.labels, -1))
    return OnTarget(estimate_target(val_probs, val_labels, applied.probs, tau=tau, target_labels=truth), classes, truth)
