"""The rows a run uses, split into train / val / test, with compact labels and slices."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.data.dataset import Dataset
from core.data.slices import slice_columns
from core.train.config import RunConfig


@dataclass
class RunData:
    """The rows a run uses, in *local* positions 0..n-1 (``rows`` maps them to the dataset).

    ``y`` is the compact label the model learns (index into ``classes``), or -1 for a row whose
    class is absent from train (an *unknown*).
    """

    rows: np.ndarray  # (n,) dataset row of each local position
    train: np.ndarray  # local positions
    val: np.ndarray
    test: np.ndarray
    y: np.ndarray  # (n,) int64 compact labels, -1 unknown
    labels: np.ndarray  # (n,) dataset class of each local position
    classes: np.ndarray  # (K,) dataset class index of each model output
    absent: np.ndarray  # dataset classes not in train
    train_counts: np.ndarray  # (K,) train items per model class
    slices: dict[str, np.ndarray] = field(default_factory=dict)  # meta column → (n,) value per local position
    pool: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # local positions of the unlabelled pool (y = -1)


def split_data(ds: Dataset, cfg: RunConfig) -> RunData:
    tr = np.flatnonzero((ds.split == 0) & ds.labelled)
    pool = np.flatnonzero(~ds.labelled)  # the unlabelled pool: pseudo-labelling and label spreading draw from it
    if cfg.max_train_items and len(tr) > cfg.max_train_items:
        rng = np.random.default_rng(cfg.seed)
        tr = np.sort(rng.choice(tr, cfg.max_train_items, replace=False))
    va, te = np.flatnonzero(ds.split == 1), np.flatnonzero(ds.split == 2)
    if len(tr) == 0:
        raise ValueError("the train split is empty. Give the dataset some train rows (or a split column with 'train').")
    classes = np.unique(ds.labels[tr])
    if len(classes) < 2:
        raise ValueError(
            f"the train split holds a single class ({ds.class_names[classes[0]]}). A classifier needs two or more: add examples of another class."
        )
    lookup = np.full(ds.n_classes, -1, np.int64)
    lookup[classes] = np.arange(len(classes))
    rows = np.concatenate([tr, va, te, pool])
    n_tr, n_va, n_te = len(tr), len(va), len(te)
    local = np.arange(len(rows))
    labels = ds.labels[rows]
    y = np.where(labels >= 0, lookup[np.maximum(labels, 0)], -1)
    # meta columns that are slices (core.data.slices: domain, source, …) are scored at every evaluation
    slices = {col: values[rows] for col, values in slice_columns(ds.meta).items()}
    return RunData(
        rows=rows,
        train=local[:n_tr],
        val=local[n_tr : n_tr + n_va],
        test=local[n_tr + n_va : n_tr + n_va + n_te],
        y=y,
        labels=labels,
        classes=classes,
        absent=np.setdiff1d(np.arange(ds.n_classes), classes),
        train_counts=np.bincount(y[:n_tr], minlength=len(classes)),
        slices=slices,
        pool=local[n_tr + n_va + n_te :],
    )
