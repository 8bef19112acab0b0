"""In-run cleaning: which train items a run leaves out or trains with another label — without
making a new dataset version (the Diagnose page's "Save as new version" does that).

    drop, relabel = decisions(settings, ds)      # dataset rows; relabel: row → class index
    dropped, relabelled = train_changes(settings, ds)   # how many train items change (the Train page)

- source ``detector``: the Diagnose detector's suspects (``core.diagnose.pipeline.diagnose``,
  cached by content, so a diagnosed version costs nothing more);
- source ``threshold``: items whose label quality (the detector's 0–1 score) is below the threshold;
- source ``plan``: the Diagnose page's plan, its own decisions as they are (its drops are dropped,
  its relabels relabelled; any action but "none" turns it on).

With action ``relabel`` a flagged item takes the detector's suggested label; where that equals
the given label there is nothing to change. The caller applies the decisions to train items
only: val and test keep their labels, so the run is measured against the same ground as any other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.data.dataset import Dataset
from core.mitigate.settings import Cleaning


def decisions(
    settings: Cleaning, ds: Dataset, *, progress: Callable[[str, float], None] | None = None
) -> tuple[np.ndarray, dict[int, int]]:
    """(rows to drop, {row: new class}) over the whole dataset version."""
    n = len(ds)
    if settings.action == "none":
        return np.zeros(0, np.int64), {}
    if settings.source == "plan":
        drop = np.asarray(sorted(settings.plan_drop), dtype=np.int64)
        relabel = {int(k): int(v) for k, v in settings.plan_relabel.items()}
        bad = [i for i in [*drop.tolist(), *relabel] if not 0 <= i < n]
        if bad:
            raise ValueError(
                f"the cleaning plan names items {bad[:5]} that this version (of {n:,} items) does not have; make the plan again."
            )
        wrong = [c for c in relabel.values() if not 0 <= c < ds.n_classes]
        if wrong:
            raise ValueError(f"the cleaning plan relabels to classes {wrong[:5]} that do not exist; make the plan again.")
        return drop, relabel
    from core.diagnose.pipeline import DiagnoseConfig, diagnose

    issues = diagnose(ds, DiagnoseConfig(), progress=progress).issues
    flagged = issues.is_issue if settings.source == "detector" else np.asarray(issues.score) < settings.threshold
    rows = np.flatnonzero(flagged)
    if settings.action == "drop":
        return rows.astype(np.int64), {}
    changed = rows[issues.suggested[rows] != ds.labels[rows]]
    return np.zeros(0, np.int64), {int(r): int(issues.suggested[r]) for r in changed}


def train_changes(settings: Cleaning, ds: Dataset) -> tuple[int, int]:
    """(train items left out, train items trained with another label) under ``settings``: what the
    Train page says before the run. Sources other than "plan" diagnose the version (cached)."""
    drop, relabel = decisions(settings, ds)
    train = ds.split == 0
    return int(train[drop].sum()), sum(1 for r in relabel if train[r])
