"""A dataset version's files: written once into its folder, read back (images memory-mapped).

::

    versions/<uuid>/
      items.npy        images, uint8 (n, H, W[, 3]) — memory-mapped on load
      items.parquet    texts (column "text") or tabular features
      rows.parquet     label, split and meta columns
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.data.dataset import RESERVED_COLUMNS, Dataset


def write_payload(ds: Dataset, folder: Path) -> None:
    """Write ``ds`` into ``folder`` (which exists and is empty)."""
    reserved = set(RESERVED_COLUMNS) & set(ds.meta.columns)
    if reserved:
        raise ValueError(f"meta columns {sorted(reserved)} clash with reserved names; rename them")
    if ds.modality == "image":
        np.save(folder / "items.npy", np.ascontiguousarray(ds.items, dtype=np.uint8))
    elif ds.modality == "text":
        pd.DataFrame({"text": pd.Series(ds.items, dtype="string")}).to_parquet(folder / "items.parquet", index=False)
    else:
        ds.items.reset_index(drop=True).to_parquet(folder / "items.parquet", index=False)
    rows = pd.concat(
        [
            pd.DataFrame({"label": ds.labels.astype(np.int32), "split": ds.split.astype(np.int8)}),
            ds.meta.reset_index(drop=True),
        ],
        axis=1,
    )
    rows.to_parquet(folder / "rows.parquet", index=False)


def read_payload(folder: Path, *, name: str, modality: str, class_names: list[str]) -> Dataset:
    """The dataset stored in ``folder`` (images stay on disk, memory-mapped, read-only)."""
    rows = pd.read_parquet(folder / "rows.parquet")
    items: np.ndarray | pd.DataFrame
    if modality == "image":
        items = np.load(folder / "items.npy", mmap_mode="r")
    else:
        table = pd.read_parquet(folder / "items.parquet")
        items = table["text"].to_numpy(dtype=object) if modality == "text" else table
    return Dataset(
        name=name, modality=modality, items=items, labels=rows["label"].to_numpy(np.int64),
        class_names=class_names, split=rows["split"].to_numpy(np.int8), meta=rows.drop(columns=list(RESERVED_COLUMNS)),
    )  # fmt: skip
