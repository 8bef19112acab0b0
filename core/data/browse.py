"""Paging through items and the Data page's preview of them: which rows a page holds, and the table
or captions it shows them with. Pure functions; no I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.dataset import SPLITS, Dataset

PER_PAGE = {"image": 40}  # items on a page of the Data page's preview, by modality
PER_PAGE_DEFAULT = 25  # texts and table rows


def n_pages(n: int, per_page: int) -> int:
    """Pages of ``per_page`` that hold ``n`` items (at least one)."""
    return max(1, -(-n // per_page))


def page_slice(page: int, per_page: int) -> slice:
    """The positions on page ``page`` (1-based)."""
    return slice((page - 1) * per_page, page * per_page)


def preview_per_page(modality: str) -> int:
    return PER_PAGE.get(modality, PER_PAGE_DEFAULT)


def matches_line(n_matching: int, page: int, pages: int) -> str:
    return f"{n_matching:,} items match · page {page} of {pages:,}"


def image_captions(ds: Dataset, rows: np.ndarray) -> list[str]:
    """'#12 · cat · train' under each image: its row, label and split."""
    return [f"#{i} · {ds.label_name(i)} · {SPLITS[ds.split[i]]}" for i in rows]


def preview_table(ds: Dataset, rows: np.ndarray) -> pd.DataFrame:
    """The ``rows`` of a text or tabular dataset as a table: item, (text,) label, split, (features,)
    then the meta columns."""
    table = pd.DataFrame({"item": rows, "label": ds.label_names(rows), "split": ds.split_names[rows]})
    if ds.modality == "text":
        table.insert(1, "text", ds.items[rows])
    else:
        table = pd.concat([table, ds.items.iloc[rows].reset_index(drop=True)], axis=1)
    return pd.concat([table, ds.meta.iloc[rows].reset_index(drop=True)], axis=1)
