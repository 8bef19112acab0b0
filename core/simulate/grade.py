"""The detector's self-check: its flags against the simulator's truth (which labels it corrupted)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.dataset import Dataset
from core.simulate.corrupt import TRAIN


@dataclass(frozen=True)
class Grade:
    corrupted: int  # items whose label the simulator changed
    flagged: int  # items the detector flagged
    caught: int  # both
    precision: float  # caught / flagged (NaN when nothing was flagged)
    recall: float  # caught / corrupted (NaN when nothing was corrupted)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return float("nan") if not (np.isfinite(p) and np.isfinite(r)) else (0.0 if p + r == 0 else 2 * p * r / (p + r))


def grade(flagged: np.ndarray, corrupted: np.ndarray, among: np.ndarray | None = None) -> Grade:
    """Precision and recall of boolean ``flagged`` against boolean ``corrupted``, over the rows
    ``among`` (a boolean mask; default all) — e.g. the train split, where the simulator works."""
    f, c = np.asarray(flagged, dtype=bool), np.asarray(corrupted, dtype=bool)
    if f.shape != c.shape:
        raise ValueError(f"flags ({f.shape}) and truth ({c.shape}) must have one value per item")
    if among is not None:
        f, c = f[among], c[among]
    caught = int((f & c).sum())
    n_f, n_c = int(f.sum()), int(c.sum())
    return Grade(n_c, n_f, caught, caught / n_f if n_f else float("nan"), caught / n_c if n_c else float("nan"))


def has_noise_truth(ds: Dataset) -> bool:
    """The version was simulated with label noise: it knows which labels are wrong (``sim_noisy``)."""
    return "sim_noisy" in ds.meta.columns and bool(ds.meta["sim_noisy"].any())


def grade_detector(ds: Dataset, flagged: np.ndarray) -> Grade:
    """The detector's ``flagged`` items of a simulated version against its truth, over the labelled
    train items (where the simulator works)."""
    return grade(flagged, ds.meta["sim_noisy"].to_numpy(dtype=bool), among=(ds.split == TRAIN) & ds.labelled)
