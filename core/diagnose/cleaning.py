"""Cleaning plans: keep / relabel / drop decisions on items, saved as a new dataset version.

A plan never edits data in place. ``save_cleaned(store, version_id, plan)`` writes a child version
(kind "clean", with the plan in its params: every decision, kept items included) and returns its
id; undo archives that child and goes back to its parent, and nothing is deleted. ``saved_plan``
reads the decisions back, so that an undone cleaning leaves its reviews as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.data.dataset import Dataset
from core.store.database import Store


class Decisions:
    """What every cleaning plan answers from its ``drop`` / ``relabel`` / ``keep`` decisions (rows of
    the version under review), whatever a relabel holds (a class here, tags in a token plan)."""

    drop: set[int]
    relabel: Mapping[int, Any]
    keep: set[int]

    def decision(self, item: int) -> str | None:
        item = int(item)
        if item in self.drop:
            return "drop"
        if item in self.relabel:
            return "relabel"
        if item in self.keep:
            return "keep"
        return None

    @property
    def n_changes(self) -> int:
        return len(self.drop) + len(self.relabel)

    @property
    def decided(self) -> set[int]:
        """Every row with a decision (kept, relabelled or dropped)."""
        return self.drop | self.keep | set(self.relabel)

    def decided_mask(self, n: int) -> np.ndarray:
        """(n,) bool: the rows of an ``n``-row version that have a decision."""
        mask = np.zeros(n, dtype=bool)
        rows = np.fromiter(self.decided, dtype=np.int64)
        mask[rows[(rows >= 0) & (rows < n)]] = True
        return mask

    def reviewed_ids(self, ds: Dataset) -> list[int]:
        """The identities (``Dataset.item_ids``) of every row reviewed — kept or relabelled — so that
        later versions do not ask about them again (``reviewed_before``)."""
        ids = ds.item_ids()
        return sorted({int(ids[i]) for i in (*self.keep, *self.relabel) if 0 <= i < len(ds)})


@dataclass
class CleaningPlan(Decisions):
    """Decisions by item index (row in the parent version). ``keep`` records a reviewed item that
    stays as it is, so it is not shown as a suspect again in this plan."""

    drop: set[int] = field(default_factory=set)
    relabel: dict[int, int] = field(default_factory=dict)  # item → new class index
    keep: set[int] = field(default_factory=set)

    def decide(self, item: int, action: str, new_label: int | None = None) -> None:
        """Record ``action`` ("keep", "relabel" or "drop") for ``item``; the last decision wins."""
        item = int(item)
        self.drop.discard(item)
        self.relabel.pop(item, None)
        self.keep.discard(item)
        if action == "drop":
            self.drop.add(item)
        elif action == "relabel":
            if new_label is None:
                raise ValueError("relabel needs the new class; pick it in the suggested-label box.")
            self.relabel[item] = int(new_label)
        elif action == "keep":
            self.keep.add(item)
        else:
            raise ValueError(f"unknown action {action!r}; use keep, relabel or drop.")

    def summary(self) -> str:
        return f"dropped {len(self.drop):,}, relabelled {len(self.relabel):,}"

    def copy(self) -> CleaningPlan:
        return CleaningPlan(set(self.drop), dict(self.relabel), set(self.keep))

    def to_params(self, ds: Dataset | None = None) -> dict:
        """What a saved version records of its plan: the rows (in the parent) dropped, relabelled
        and kept; with ``ds``, also the identities (``Dataset.item_ids``) of every item reviewed —
        kept or relabelled — so that later versions do not ask about them again
        (``reviewed_before``)."""
        params: dict = {
            "drop": sorted(self.drop),
            "relabel": {str(k): v for k, v in sorted(self.relabel.items())},
            "kept": len(self.keep),
            "keep": sorted(self.keep),
        }
        if ds is not None:
            params["reviewed_ids"] = self.reviewed_ids(ds)
        return params

    def apply(self, ds: Dataset) -> Dataset:
        """The cleaned dataset: relabelled items get their new class, dropped items are gone.

        The original row index is kept in the meta column ``source_item`` so that later
        diagnoses, runs and reports can point back to the parent version.
        """
        n = len(ds)
        bad = [i for i in (*self.drop, *self.relabel) if not 0 <= i < n]
        if bad:
            raise ValueError(f"items {bad[:5]} are not in this dataset version (it has {n:,} items); rebuild the plan.")
        bad_labels = [c for c in self.relabel.values() if not 0 <= c < ds.n_classes]
        if bad_labels:
            raise ValueError(f"classes {bad_labels[:5]} do not exist; this dataset has {ds.n_classes} classes.")
        labels = ds.labels.copy()
        for item, new in self.relabel.items():
            labels[item] = new
        keep = np.ones(n, dtype=bool)
        keep[list(self.drop)] = False
        index = np.flatnonzero(keep)
        meta = ds.meta.copy()
        if "source_item" not in meta.columns:
            meta["source_item"] = np.arange(n, dtype=np.int64)
        out = Dataset(ds.name, ds.modality, ds.items, labels, list(ds.class_names), ds.split, meta)
        return out.subset(index)


def save_cleaned(store: Store, version_id: int, plan: CleaningPlan, *, dataset: Dataset | None = None) -> int:
    """Apply ``plan`` to version ``version_id`` and store the result as its child; return the new id."""
    if plan.n_changes == 0:
        raise ValueError("The plan changes nothing yet: mark some suspects as relabel or drop first.")
    info = store.version(version_id)
    ds = dataset if dataset is not None else store.load_dataset(version_id)
    cleaned = plan.apply(ds)
    if len(np.unique(cleaned.labels)) < 2:
        raise ValueError("After this plan fewer than two classes would remain; drop fewer items.")
    return store.save_dataset(
        cleaned,
        source=info.source,
        dataset_id=info.dataset_id,
        parent_id=version_id,
        kind="clean",
        note=plan.summary(),
        params=plan.to_params(ds),
    )


def reviewed_before(store: Store, version_id: int, ds: Dataset) -> set[int]:
    """Rows of ``ds`` (version ``version_id``) whose items were reviewed — kept or relabelled — in
    a cleaning plan saved on this version's line of ancestors."""
    ids: set[int] = set()
    parent: int | None = version_id
    while parent is not None:
        info = store.version(parent)
        ids.update(int(i) for i in info.params.get("reviewed_ids", ()))
        parent = info.parent_id
    if not ids:
        return set()
    return {int(r) for r in np.flatnonzero(np.isin(ds.item_ids(), list(ids)))}


def starting_plan(store: Store, version_id: int, ds: Dataset) -> CleaningPlan:
    """A new plan for ``version_id`` that already marks as kept what earlier versions reviewed."""
    return CleaningPlan(keep=reviewed_before(store, version_id, ds))


def saved_plan(store: Store, version_id: int, parent: Dataset | None = None) -> CleaningPlan:
    """The plan cleaned version ``version_id`` was saved from, in its parent's rows: what was
    dropped, relabelled and kept. Versions saved before kept rows were recorded (``params`` without
    "keep") give them back from ``reviewed_ids`` and the parent's item identities (``parent``, else
    loaded)."""
    info = store.version(version_id)
    if info.kind != "clean" or info.parent_id is None:
        raise ValueError(f"v{version_id} is not a cleaned version: it was saved from no plan.")
    params = info.params
    relabel = {int(k): int(v) for k, v in params.get("relabel", {}).items()}
    if "keep" in params:
        keep = {int(i) for i in params["keep"]}
    else:
        ids = params.get("reviewed_ids", ())
        parent_ds = parent if parent is not None else store.load_dataset(info.parent_id)
        keep = {int(r) for r in np.flatnonzero(np.isin(parent_ds.item_ids(), list(ids)))} - set(relabel) if ids else set()
    return CleaningPlan(drop={int(i) for i in params.get("drop", ())}, relabel=relabel, keep=keep)


def undo(store: Store, version_id: int) -> int:
    """Archive a cleaned version (files and rows stay) and return its parent's id to go back to."""
    info = store.version(version_id)
    if info.parent_id is None:
        raise ValueError("This version is an import, not a cleaning: there is nothing to undo.")
    store.set_archived(version_id, True)
    return int(info.parent_id)


def undo_with_reviews(store: Store, version_id: int, parent: Dataset | None = None) -> tuple[int, CleaningPlan]:
    """``undo`` a cleaned version and give back, with its parent's id, the plan it was saved from
    (``saved_plan``): the parent's reviews come back as they were — kept, relabelled, dropped —
    rather than as open suspects, ready to change and save again."""
    plan = saved_plan(store, version_id, parent)
    return undo(store, version_id), plan
