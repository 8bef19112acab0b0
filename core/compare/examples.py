"""Which test items a change fixed, which it broke, which stay wrong.

Test items are matched across versions by ``source_item`` (the row of the imported version every
cleaning and simulation keeps), so a run on a simulated version and one on its clean parent are
compared item by item.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.metrics.results import RunResults

if TYPE_CHECKING:
    from core.data.dataset import Dataset
    from core.store.database import Store

OUTCOMES = ("fixed", "introduced", "still wrong", "both right")


def keyed_predictions(res: RunResults, ds: Dataset) -> pd.DataFrame:
    """The run's test predictions at its result, the evaluation its checkpoint rule picks, indexed by the item's identity across
    versions (``source_item``, else the row), with the row in this version kept as ``item``."""
    preds = res.predictions("test", step=res.result_step)
    rows = preds["item"].to_numpy(dtype=np.int64)
    key = ds.item_ids()[rows]
    return preds.assign(key=key).set_index("key")


def example_diff(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Items both runs answered, with each run's answer and an ``outcome`` from ``OUTCOMES``
    (from run a to run b). ``a`` and ``b`` as from ``keyed_predictions``."""
    both = a.merge(b, left_index=True, right_index=True, how="inner", suffixes=("_a", "_b"))
    if both.empty:
        return pd.DataFrame(columns=["label", "pred_a", "conf_a", "pred_b", "conf_b", "item_a", "item_b", "outcome"])
    right_a = both["pred_a"] == both["label_a"]
    right_b = both["pred_b"] == both["label_b"]
    outcome = np.select([~right_a & right_b, right_a & ~right_b, ~right_a & ~right_b], OUTCOMES[:3], OUTCOMES[3])
    return pd.DataFrame(
        {
            "label": both["label_b"],
            "pred_a": both["pred_a"],
            "conf_a": both["conf_a"],
            "pred_b": both["pred_b"],
            "conf_b": both["conf_b"],
            "item_a": both["item_a"],
            "item_b": both["item_b"],
            "outcome": outcome,
        },
        index=both.index,
    )


def outcome_counts(diff: pd.DataFrame) -> dict[str, int]:
    counts = diff["outcome"].value_counts()
    return {o: int(counts.get(o, 0)) for o in OUTCOMES}


def top_outcome(diff: pd.DataFrame, outcome: str, n: int = 12) -> pd.DataFrame:
    """The ``n`` items of ``outcome`` the second run answered most confidently, most confident first."""
    return diff[diff["outcome"] == outcome].sort_values("conf_b", ascending=False).head(n)


def shares_items(store: Store, a: RunResults, b: RunResults) -> bool:
    """Whether two runs' test items can be matched: versions of one dataset with the same classes."""
    va, vb = store.version(int(a.row.version_id)), store.version(int(b.row.version_id))
    return va.dataset_id == vb.dataset_id and list(va.class_names) == list(vb.class_names)
