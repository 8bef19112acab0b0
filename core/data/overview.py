"""A dataset's profile as the Data page shows it: headline figures, the head / medium / tail line,
duplicate groups as a table, and sentences about empty texts and image sizes. Pure functions of a
``Profile`` (and the ``Dataset`` it describes); no I/O.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from core.data.dataset import Dataset
from core.data.profile import Balance, Duplicates, Profile
from core.metrics.groups import GROUPS, HEAD_ABOVE, TAIL_BELOW, group_counts, rule_words

MAX_DUPLICATE_GROUPS = 200  # rows of the duplicates table
ITEMS_PER_GROUP = 10  # item numbers listed per duplicate group
EMPTY_TEXTS_LISTED = 20


class Figure(NamedTuple):
    """One number as a page shows it: label, value (formatted), a note (a caption or a tooltip) and
    an optional change beside it."""

    label: str
    value: str
    note: str = ""
    delta: str | None = None


def kpis(prof: Profile) -> list[Figure]:
    """The figures above the class distribution: items, classes, and the train split's balance."""
    b = prof.train
    pool = f" ({prof.n_unlabelled:,} unlabelled)" if prof.n_unlabelled else ""
    pool_note = " Unlabelled rows form a pool in train that pseudo-labelling and label spreading can use." if prof.n_unlabelled else ""
    missing = f" ({len(b.missing)} missing in train)" if b.missing else ""
    ratio = "∞" if not np.isfinite(b.imbalance_ratio) else f"{b.imbalance_ratio:,.1f}×"
    return [
        Figure("Items", f"{prof.n_items:,}{pool}", "Rows in all splits." + pool_note),
        Figure("Classes", f"{len(prof.class_names)}{missing}", "Classes with no training items cannot be learned."),
        Figure("Imbalance ratio", ratio, "Largest ÷ smallest training class; above ~10× the tail starts to suffer."),
        Figure("Normalised entropy", f"{b.normalised_entropy:.3f}", "1 = perfectly balanced classes, 0 = everything in one class."),
        Figure("Gini", f"{b.gini:.3f}", "Inequality of class sizes: 0 = equal, towards 1 = concentrated in few classes."),
        Figure(
            "Effective samples",
            f"{b.effective_number:,.0f}",
            "Σ (1−βⁿ)/(1−β), β = 0.999: what the training items are worth once overlap within a class is discounted.",
        ),
    ]


def groups_line(bal: Balance) -> str:
    """The head / medium / tail rule in words, the classes in each group, and what the groups mean
    for this data: the same rule, on the same train counts, as the metrics' ``ece_head`` /
    ``ece_medium`` / ``ece_tail`` (``core.metrics.groups``)."""
    head, tail = bal.thresholds or (HEAD_ABOVE, TAIL_BELOW)
    n = group_counts(bal.groups)
    counted = " · ".join(f"{n[g]} {g}" for g in GROUPS) + " classes"
    scope = "" if bal.thresholds else "Colours are each class’s group by its train items; the bars count all splits. "
    line = (
        f"{scope}Groups by train items, as the metrics score them — {rule_words(head, tail)} (the long-tail literature’s split). {counted}."
    )
    filled = [g for g in GROUPS if n[g]]
    if len(filled) == 1 and sum(n.values()) > 1:
        line += (
            f" Every class is {filled[0]}, so the groups do not tell classes apart here and the {filled[0]} ECE is the"
            " ECE of every class; the imbalance ratio says more."
        )
    return line


def duplicate_figures(d: Duplicates) -> list[Figure]:
    return [
        Figure("Repeated items", f"{d.n_duplicate_items:,}", "Items whose exact content appears earlier in the dataset."),
        Figure("Train–test leaks", f"{d.leaks['train–test']:,}", "Test items whose content is also in train: they inflate test scores."),
        Figure("Train–val leaks", f"{d.leaks['train–val']:,}"),
        Figure("Conflicting labels", f"{d.n_conflicting_groups:,}", "Identical items with different labels: label noise by definition."),
    ]


def duplicate_groups(d: Duplicates, ds: Dataset) -> pd.DataFrame:
    """The first ``MAX_DUPLICATE_GROUPS`` groups of exact duplicates as shown: class names, split
    names and the first item numbers as text, and for text data the text itself first."""
    shown = d.groups.head(MAX_DUPLICATE_GROUPS)
    table = shown.assign(
        labels=shown["labels"].map(lambda ls: ", ".join(ds.class_names[i] for i in ls)),
        splits=shown["splits"].map(", ".join),
        items=shown["items"].map(lambda ls: ", ".join(map(str, ls[:ITEMS_PER_GROUP])) + (" …" if len(ls) > ITEMS_PER_GROUP else "")),
    )
    if ds.modality == "text":
        table.insert(0, "text", [ds.items[int(items[0])] for items in shown["items"]])
    return table


def skipped_table(skipped: list[tuple[str, str]] | list[list[str]]) -> pd.DataFrame:
    """Files left out of an import, and why."""
    return pd.DataFrame(skipped, columns=["file", "reason"])


def empty_texts_line(empty: np.ndarray) -> str:
    listed = ", ".join(map(str, empty[:EMPTY_TEXTS_LISTED])) + (" …" if len(empty) > EMPTY_TEXTS_LISTED else "")
    return f"{len(empty):,} empty texts (items {listed})."


def image_lines(stats: dict[str, Any]) -> list[str]:
    """How images are stored and, when they were imported from files, their original sizes."""
    s = stats
    lines = [
        f"Stored at **{s['width']}×{s['height']}**, {'RGB' if s['channels'] == 3 else 'grayscale'}; "
        f"mean intensity {s['mean_intensity']:.1f} / 255."
    ]
    if "orig_width" in s:
        w, h = s["orig_width"], s["orig_height"]
        lines.append(
            f"Original widths {w['min']}–{w['max']} (median {w['median']:.0f}), heights {h['min']}–{h['max']} (median {h['median']:.0f})"
            + (" — resized on import." if s.get("resized") else ".")
        )
    return lines
