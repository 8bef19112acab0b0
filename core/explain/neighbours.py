"""The data-centric "why": an item's nearest train items in embedding space (torch-free).

A model that answers *coat* for a shirt has usually seen train items like it labelled *coat*;
whether those labels are themselves suspect, or the given class is thin, says whether the fix is
in the data. The embeddings are ``core.embed``'s (cached per version, the ones Diagnose uses);
suspects come from a diagnosis or a run's training dynamics, whichever the caller has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.dataset import Dataset
from core.metrics.groups import TAIL_BELOW


@dataclass(frozen=True)
class Neighbours:
    """The ``k`` nearest train items of ``item``, nearest first: their rows in the dataset, cosine
    similarity, labels, whether each is a suspected label error (None: no suspects known), and the
    train count of every class (for "thin")."""

    item: int
    rows: np.ndarray
    similarity: np.ndarray
    labels: np.ndarray
    suspect: np.ndarray | None
    train_counts: np.ndarray

    def thin(self, cls: int) -> bool:
        """Class ``cls`` has fewer than the tail rule's train items (``core.metrics.groups``)."""
        return int(self.train_counts[cls]) < TAIL_BELOW

    def count(self, cls: int) -> int:
        return int((self.labels == cls).sum())

    def suspects_among(self, cls: int) -> int | None:
        if self.suspect is None:
            return None
        return int((self.suspect & (self.labels == cls)).sum())


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest_train(emb: np.ndarray, ds: Dataset, item: int, *, k: int = 5, suspect: np.ndarray | None = None) -> Neighbours:
    """The ``k`` labelled train items nearest to ``item`` by cosine similarity of ``emb`` (n, d),
    the item itself left out. ``suspect``: (n,) bool, the items flagged as label errors."""
    if len(emb) != len(ds):
        raise ValueError(f"embeddings ({len(emb)}) and dataset ({len(ds)}) differ in length")
    train = np.flatnonzero((ds.split == 0) & ds.labelled)
    train = train[train != item]
    counts = np.bincount(ds.labels[(ds.split == 0) & ds.labelled], minlength=ds.n_classes)
    if len(train) == 0:
        empty = np.zeros(0, np.int64)
        return Neighbours(item, empty, np.zeros(0), empty, None if suspect is None else np.zeros(0, bool), counts)
    unit = _unit(emb[train])
    sims = unit @ _unit(emb[item : item + 1])[0]
    k = min(k, len(train))
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.lexsort((train[top], -sims[top]))]  # nearest first, ties by row
    rows = train[top]
    flags = None if suspect is None else np.asarray(suspect, bool)[rows]
    return Neighbours(item, rows, sims[top].astype(np.float64), ds.labels[rows], flags, counts)


def why_words(nb: Neighbours, ds: Dataset, *, predicted: int, given: int) -> str:
    """What the neighbours say about the answer, in one or two sentences (markdown)."""
    k = len(nb.rows)
    if k == 0:
        return "No labelled train items to compare with."
    name = ds.class_names
    n_pred = nb.count(predicted)
    words = [f"Answered **{name[predicted]}**: {n_pred} of its {k} nearest train items are labelled {name[predicted]}"]
    sus = nb.suspects_among(predicted)
    if sus:
        words[-1] += f", {sus} of them suspected label errors"
    words[-1] += "."
    if given != predicted:
        n_given = nb.count(given)
        line = f"Its given label, **{name[given]}**, labels {n_given} of them"
        if nb.thin(given):
            line += f"; {name[given]} is a thin class ({int(nb.train_counts[given]):,} train items)"
        words.append(line + ".")
    if nb.suspect is None:
        words.append("Run Diagnose on this version to flag which of them are suspected label errors.")
    return " ".join(words)


def suspect_flags(
    n: int, *, diagnosis: tuple[np.ndarray, np.ndarray] | None = None, dynamics: dict | None = None
) -> tuple[np.ndarray | None, str]:
    """Which of the ``n`` items are suspected label errors, and where that comes from in words.

    ``diagnosis``: (rows, is_issue) of a Diagnose result (a sample covers only its rows);
    ``dynamics``: a run's training dynamics, whose *hard-to-learn* train items are the suspects
    (``core.select.scores.data_map``). The diagnosis wins when both are given; neither → (None, …)."""
    flags = np.zeros(n, bool)
    if diagnosis is not None:
        rows, issue = (np.asarray(a) for a in diagnosis)
        inside = rows < n
        flags[rows[inside]] = np.asarray(issue, bool)[inside]
        return flags, f"suspects from Diagnose ({int(inside.sum()):,} items judged)"
    if dynamics is not None and len(dynamics.get("p_given", ())):
        from core.select.scores import data_map

        m = data_map(dynamics)
        rows = m["row"].to_numpy()
        hard = (m["region"] == "hard to learn").to_numpy() & (rows < n)
        flags[rows[hard]] = True
        return flags, "suspects: the run's hard-to-learn train items (training dynamics)"
    return None, "no suspects known"
