"""What an upload shows before it is imported: for a table, the columns to choose for each role
(with the guess as the default); for an image ZIP, its classes and splits in words. Pure functions;
the upload itself is read by ``tables`` and ``imagefiles``.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from core.data.imagefiles import ZipPreview
from core.data.tables import TableGuess, TableRoles

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
    """The roles chosen: a text column makes ``meta`` the slices; without one, ``others`` are the features."""
    split_col = None if split == NO_SPLIT else split
    if text != NO_TEXT:
        return TableRoles(label=label, text=text, split=split_col, meta=meta)
    return TableRoles(label=label, split=split_col, features=others)


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
            "no split folders: a stratified split will be made, 10% val and 10% test per class; "
            "a class of fewer than 10 images stays wholly in train"
        )
    return (
        f"{preview.n_images:,} image{'s' if preview.n_images != 1 else ''} in {n_classes:,} "
        f"class{'es' if n_classes != 1 else ''} ({where}). Images that turn out corrupt or too large are skipped at import."
    )
