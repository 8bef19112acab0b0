"""What the data looks like before any model sees it: class balance, gaps, duplicates, leaks.

``profile(ds)`` returns a ``Profile`` of plain numbers and DataFrames; pages draw it, tests check it
against hand-computed values. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.data.dataset import SPLITS, Dataset, content_hashes
from core.data.slices import slice_columns
from core.metrics.groups import HEAD_ABOVE, TAIL_BELOW, group_of_classes

CUI_BETA = 0.999  # β of the "effective number of samples" (Cui et al. 2019)


@dataclass
class Balance:
    """Class balance of one split. Arrays are (K,) in class order."""

    counts: np.ndarray
    imbalance_ratio: float  # largest / smallest non-empty class; inf when only one class has items
    normalised_entropy: float  # H(p) / log K: 1 = perfectly balanced, 0 = one class only
    gini: float  # Gini coefficient of the counts: 0 = balanced, → 1 = all in one class
    effective_classes: float  # exp(H): how many equally-sized classes carry the same entropy
    effective_number: float  # Σ_c (1 − β^n_c) / (1 − β), β = CUI_BETA: items "worth" after overlap
    missing: list[int]  # classes with no items in this split
    groups: np.ndarray  # "head" / "medium" / "tail" per class, by its train items (core.metrics.groups)
    thresholds: tuple[int, int] | None  # (head if train count > a, tail if < b); None: ``counts`` are not what groups


def balance(
    counts: np.ndarray, *, train_counts: np.ndarray | None = None, thresholds: tuple[int, int] = (HEAD_ABOVE, TAIL_BELOW)
) -> Balance:
    """The balance of ``counts`` (K,). Classes are grouped by ``train_counts`` (default: ``counts``
    themselves) with the rule the metrics use (``core.metrics.groups``, ``thresholds`` = its head
    and tail thresholds); when the groups come from other counts, ``Balance.thresholds`` is None, as
    no line on these counts separates them."""
    counts = np.asarray(counts, dtype=np.int64)
    k = len(counts)
    total = counts.sum()
    present = counts[counts > 0]
    p = present / total if total else present.astype(float)
    entropy = float(-(p * np.log(p)).sum()) if total else 0.0
    ratio = float(present.max() / present.min()) if len(present) >= 2 else float("inf")
    mean = counts.mean() if k else 0.0
    gini = float(np.abs(counts[:, None] - counts[None, :]).sum() / (2 * k * k * mean)) if mean > 0 else 0.0
    head, tail = thresholds
    groups = group_of_classes(counts if train_counts is None else np.asarray(train_counts), head=head, tail=tail).astype(object)
    return Balance(
        counts=counts,
        imbalance_ratio=ratio,
        normalised_entropy=entropy / np.log(k) if k > 1 else 0.0,
        gini=gini,
        effective_classes=float(np.exp(entropy)),
        effective_number=float(((1 - CUI_BETA**counts) / (1 - CUI_BETA)).sum()),
        missing=[int(c) for c in np.flatnonzero(counts == 0)],
        groups=groups,
        thresholds=(head, tail) if train_counts is None else None,
    )


@dataclass
class Duplicates:
    """Exact duplicates by content hash.

    ``groups``: one row per group of ≥ 2 identical items: ``items`` (row indices), ``size``,
    ``splits`` (sorted split names), ``labels`` (sorted class indices), ``leak`` (spans splits),
    ``conflict`` (identical items with different labels — label noise by definition).
    """

    groups: pd.DataFrame
    n_duplicate_items: int  # items that repeat an earlier item (size − 1 per group)
    leaks: dict[str, int]  # "train–test": number of test items whose content is also in train, …
    n_conflicting_groups: int


@dataclass
class Profile:
    n_items: int
    modality: str
    class_names: list[str]
    counts: pd.DataFrame  # index: class names; columns: train, val, test, all
    train: Balance
    overall: Balance
    duplicates: Duplicates
    missing_values: pd.DataFrame  # column, missing, share — only columns with something missing
    empty_texts: np.ndarray  # row indices of empty/whitespace texts (text data)
    text_lengths: pd.DataFrame | None  # rows chars/words; columns min, mean, median, p95, max
    word_counts: np.ndarray | None  # (n,) words per text (text data), for the length histogram
    image_stats: dict | None  # height, width, channels, mean_intensity, original size ranges
    slices: dict[str, pd.DataFrame] = field(default_factory=dict)  # column → (slice value × split/class counts)
    n_unlabelled: int = 0  # items of the unlabelled pool (left out of every count above)


def duplicates(ds: Dataset, hashes: np.ndarray | None = None) -> Duplicates:
    hashes = content_hashes(ds) if hashes is None else hashes
    df = pd.DataFrame({"h": hashes, "item": np.arange(len(ds)), "split": ds.split, "label": ds.labels})
    dup = df[df.duplicated("h", keep=False)]
    if dup.empty:
        empty = pd.DataFrame(columns=["items", "size", "splits", "labels", "leak", "conflict"])
        return Duplicates(empty, 0, {f"{a}–{b}": 0 for a, b in _PAIRS}, 0)
    g = dup.groupby("h", sort=False)
    groups = pd.DataFrame(
        {
            "items": g["item"].agg(list),
            "size": g.size(),
            "splits": g["split"].agg(lambda s: sorted({SPLITS[i] for i in s})),
            "labels": g["label"].agg(lambda s: sorted(set(int(v) for v in s if v >= 0))),  # the pool has no label to conflict
        }
    ).reset_index(drop=True)
    groups["leak"] = groups["splits"].map(len) > 1
    groups["conflict"] = groups["labels"].map(len) > 1
    groups = groups.sort_values(["leak", "conflict", "size"], ascending=False, ignore_index=True)
    leaks = {}
    for a, b in _PAIRS:
        in_a = set(df.loc[df["split"] == SPLITS.index(a), "h"])
        leaks[f"{a}–{b}"] = int(df.loc[df["split"] == SPLITS.index(b), "h"].isin(in_a).sum())
    return Duplicates(groups, int((groups["size"] - 1).sum()), leaks, int(groups["conflict"].sum()))


_PAIRS = (("train", "test"), ("train", "val"), ("val", "test"))


def class_counts(ds: Dataset) -> pd.DataFrame:
    k = ds.n_classes
    table = np.zeros((k, len(SPLITS)), dtype=np.int64)
    labelled = ds.labelled
    np.add.at(table, (ds.labels[labelled], ds.split[labelled]), 1)
    counts = pd.DataFrame(table, index=pd.Index(ds.class_names, name="class"), columns=list(SPLITS))
    counts["all"] = counts.sum(axis=1)
    return counts


def missing_values(ds: Dataset) -> pd.DataFrame:
    frames = [ds.meta]
    if ds.modality == "tabular":
        frames.insert(0, ds.items)
    rows = []
    for frame in frames:
        for col in frame.columns:
            n = int(frame[col].isna().sum())
            if n:
                rows.append({"column": str(col), "missing": n, "share": n / len(frame)})
    return pd.DataFrame(rows, columns=["column", "missing", "share"])


def text_lengths(texts: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(stats of characters and words, indices of empty texts, words per text)."""
    s = pd.Series(texts, dtype="string").fillna("")
    chars = s.str.len().to_numpy()
    words = s.str.count(r"\S+").to_numpy()
    empty = np.flatnonzero(words == 0)

    def stats(x: np.ndarray) -> dict:
        return {
            "min": int(x.min()),
            "mean": float(x.mean()),
            "median": float(np.median(x)),
            "p95": float(np.percentile(x, 95)),
            "max": int(x.max()),
        }

    return pd.DataFrame([stats(chars), stats(words)], index=["characters", "words"]), empty, words


def image_stats(ds: Dataset) -> dict[str, Any]:
    x = ds.items
    stats: dict[str, Any] = {
        "height": int(x.shape[1]),
        "width": int(x.shape[2]),
        "channels": 3 if x.ndim == 4 else 1,
        # a strided sample keeps this O(1000) items on 70k-image datasets
        "mean_intensity": float(np.asarray(x[:: max(1, len(x) // 1000)]).mean()),
    }
    if {"orig_width", "orig_height"} <= set(ds.meta.columns):
        for col in ("orig_width", "orig_height"):
            v = ds.meta[col].to_numpy()
            stats[col] = {"min": int(v.min()), "median": float(np.median(v)), "max": int(v.max())}
        stats["resized"] = bool(((ds.meta["orig_width"] != stats["width"]) | (ds.meta["orig_height"] != stats["height"])).any())
    return stats


def slice_counts(ds: Dataset) -> dict[str, pd.DataFrame]:
    """Counts per slice value × split and × class, for every meta column that is a slice
    (``core.data.slices``: the same slices training scores)."""
    out = {}
    split_names = ds.split_names
    class_of = ds.label_names()
    for col, key in slice_columns(ds.meta).items():
        frame = pd.DataFrame({"slice": key, "split": split_names, "class": class_of})
        by_split = pd.crosstab(frame["slice"], frame["split"]).reindex(columns=list(SPLITS), fill_value=0)
        by_class = pd.crosstab(frame["slice"], frame["class"]).reindex(columns=list(map(str, ds.class_names)), fill_value=0)
        table = pd.concat([by_split, by_class], axis=1, keys=["split", "class"])
        table[("all", "all")] = by_split.sum(axis=1)
        out[col] = table
    return out


def profile(ds: Dataset) -> Profile:
    counts = class_counts(ds)
    train = balance(counts["train"].to_numpy())
    # groups are a property of the train split (what the model learns from): all splits keep them
    overall = balance(counts["all"].to_numpy(), train_counts=counts["train"].to_numpy())
    lengths, empty, words = text_lengths(ds.items) if ds.modality == "text" else (None, np.array([], dtype=np.int64), None)
    return Profile(
        n_items=len(ds),
        modality=ds.modality,
        class_names=list(ds.class_names),
        counts=counts,
        train=train,
        overall=overall,
        duplicates=duplicates(ds),
        missing_values=missing_values(ds),
        empty_texts=empty,
        text_lengths=lengths,
        word_counts=words,
        image_stats=image_stats(ds) if ds.modality == "image" else None,
        slices=slice_counts(ds),
        n_unlabelled=ds.n_unlabelled,
    )
