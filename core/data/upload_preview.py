"""What an upload shows before it is imported: for a table, the columns to choose for each role
(with the guess as the default); for an image ZIP, its classes and splits in words; for both, what
the import will do that the file does not say: a text decoded by a fallback encoding, val carved
out of train, a split made. Pure functions; the upload itself is read by ``tables`` and
``imagefiles``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from core.data.imagefiles import ZipPreview
from core.data.splits import parse_split_column, scoring_problem, stratified_split
from core.data.tables import SPLIT_SEED, VAL_SHARE, SplitPlan, TableGuess, TableRoles, TextEncoding

NO_TEXT = "(none: tabular features)"
NO_SPLIT = "(make a stratified split)"
MAX_SLICE_VALUES = 50  # a metadata column with at most this many values is offered as a slice by default


class Choice(NamedTuple):
    """The options of one role's select box and the position of the default among them."""

    options: list[str]
    default: int  # position of the default option


def label_choice(guess: TableGuess, columns: list[str]) -> Choice:
    options = guess.label_candidates or columns
    default = guess.roles.label if guess.roles else options[0]
    return Choice(options, options.index(default))


def text_choice(guess: TableGuess, columns: list[str], label: str) -> Choice:
    """Every column but the label, after ``NO_TEXT``; the guessed text column first chosen."""
    options = [NO_TEXT] + [c for c in columns if c != label]
    if guess.roles and guess.roles.text:
        default = guess.roles.text
    else:
        default = guess.text_candidates[0] if guess.text_candidates else NO_TEXT
    return Choice(options, options.index(default) if default in options else 0)


def split_choice(guess: TableGuess, columns: list[str], label: str, text: str) -> Choice:
    """Every column but the label and text, after ``NO_SPLIT``; the guessed split column first chosen."""
    options = [NO_SPLIT] + [c for c in columns if c not in (label, text)]
    default = guess.roles.split if guess.roles and guess.roles.split in options else NO_SPLIT
    return Choice(options, options.index(str(default)))


def other_columns(columns: list[str], label: str, text: str, split: str) -> list[str]:
    """The columns left once label, text and split are chosen: features, or slices of texts."""
    return [c for c in columns if c not in (label, text, split)]


def default_slices(df: pd.DataFrame, columns: list[str]) -> list[str]:
    """The ``columns`` with few enough values to slice by."""
    return [c for c in columns if df[c].nunique() <= MAX_SLICE_VALUES]


def table_roles(label: str, text: str, split: str, others: list[str], meta: list[str]) -> TableRoles:
    """The roles chosen: a text column makes ``meta`` the slices; without one, ``others`` are the
    features and ``meta`` are kept beside them as well (groups and slices: sex, site, year…)."""
    split_col = None if split == NO_SPLIT else split
    if text != NO_TEXT:
        return TableRoles(label=label, text=text, split=split_col, meta=meta)
    return TableRoles(label=label, split=split_col, features=others, meta=meta)


def zip_counts(preview: ZipPreview) -> pd.DataFrame:
    """Images per class and split, '—' for images outside split folders (for a bar chart)."""
    return preview.counts.assign(split=preview.counts["split"].fillna("—"))


def zip_words(preview: ZipPreview) -> str:
    """'7 images in 2 classes (split folders found: test, train). …'"""
    n_classes = preview.counts["class"].nunique()
    if preview.has_splits:
        where = f"split folders found: {', '.join(sorted({str(x) for x in preview.counts['split'].dropna()}))}"
    else:
        where = (
            f"no split folders: a stratified split will be made, {VAL_SHARE:.0%} val and {VAL_SHARE:.0%} test per class; "
            f"a class of fewer than {round(1 / VAL_SHARE)} images stays wholly in train"
        )
    return (
        f"{preview.n_images:,} image{'s' if preview.n_images != 1 else ''} in {n_classes:,} "
        f"class{'es' if n_classes != 1 else ''} ({where}). Images that turn out corrupt or too large are skipped at import."
    )


def encoding_note(encoding: TextEncoding | None) -> str | None:
    """'read as Latin-1: the file is not valid UTF-8 (first bad byte at offset 25) …', or None when
    the text was valid UTF-8 or UTF-16 (or the file is Parquet)."""
    if encoding is None or not encoding.fallback:
        return None
    also = " (Latin-1 with € and curly quotes in bytes 0x80–0x9F, which the file has)" if encoding.name == "Windows-1252" else ""
    return (
        f"read as {encoding.name}{also}: the file is not valid UTF-8 (first bad byte at offset {encoding.bad_byte:,}). "
        "If accents look wrong, save it as UTF-8 and upload it again."
    )


def zip_split(preview: ZipPreview, *, seed: int = SPLIT_SEED) -> SplitPlan:
    """The split importing the archive makes of its images, from their folders alone (as
    ``imagefiles.dataset_from_images``: images outside split folders train; val carved out of train
    when no val folder is given; a stratified split without split folders). Images that turn out
    corrupt at import are not known yet."""
    counts = preview.counts
    classes = {c: i for i, c in enumerate(sorted(set(counts["class"])))}
    labels = np.repeat([classes[c] for c in counts["class"]], counts["images"].to_numpy()).astype(np.int64)
    if not preview.has_splits:
        return SplitPlan(stratified_split(labels, seed=seed), made=True)
    folders = pd.Series(np.repeat([s or "train" for s in counts["split"]], counts["images"].to_numpy()))
    split = parse_split_column(folders)
    if (split == 1).any():
        return SplitPlan(split)
    split = np.where(split == 0, stratified_split(labels, val=VAL_SHARE, test=0.0, seed=seed, holdout_from=split == 0), split)
    return SplitPlan(split.astype(np.int8), carved_val=int((split == 1).sum()))


def split_note(plan: SplitPlan, *, what: str = "items") -> str | None:
    """What the import does to the split that the upload does not say, with its figures: val carved
    out of train, a split made, no test items; None when the upload gives all three splits."""
    n = np.bincount(np.asarray(plan.split, np.int64), minlength=3)
    small = f"per class, rounded down: a class of fewer than {round(1 / VAL_SHARE)} train {what} gives none"
    if plan.carved_val:
        words = f"no val split: {VAL_SHARE:.0%} of train ({plan.carved_val:,} {what}) will become val, seeded ({small})."
    elif plan.made:
        words = (
            f"no split given: a stratified split will be made, seeded: {n[0]:,} train, {n[1]:,} val and {n[2]:,} test {what} "
            f"({VAL_SHARE:.0%} val and {VAL_SHARE:.0%} test per class, rounded down)."
        )
    elif n[1] == 0:
        words = (
            f"no val split, and no class has {round(1 / VAL_SHARE)} train {what}: val stays empty, so a run reads its latest "
            "evaluation instead of choosing the best by val."
        )
    else:
        words = ""
    if problem := scoring_problem(plan.split):
        words = f"{words} {problem}".strip()
    return words or None
