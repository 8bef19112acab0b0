"""A dataset version's files: written once into its folder, read back (images memory-mapped).

::

    versions/<uuid>/
      items.npy        images, uint8 (n, H, W[, 3]) — memory-mapped on load
      items.parquet    texts (column "text"), tabular features, or sentences (list<string>
                       columns "tokens" and "tags")
      rows.parquet     label, split and meta columns
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.data.dataset import RESERVED_COLUMNS, Dataset


def _sentences_column(seqs: np.ndarray) -> pa.Array:
    return pa.array([list(s) for s in seqs], type=pa.list_(pa.string()))


def _read_sentences(column: pa.ChunkedArray) -> np.ndarray:
    """A list<string> column as an object array (n,) of tuples of str."""
    flat = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    values = flat.flatten().to_numpy(zero_copy_only=False).tolist()
    offsets = flat.offsets.to_numpy()
    out = np.empty(len(flat), dtype=object)
    for i in range(len(flat)):
        out[i] = tuple(values[offsets[i] - offsets[0] : offsets[i + 1] - offsets[0]])
    return out


def write_payload(ds: Dataset, folder: Path) -> None:
    """Write ``ds`` into ``folder`` (which exists and is empty)."""
    reserved = set(RESERVED_COLUMNS) & set(ds.meta.columns)
    if reserved:
        raise ValueError(f"meta columns {sorted(reserved)} clash with reserved names; rename them")
    if ds.modality == "image":
        np.save(folder / "items.npy", np.ascontiguousarray(ds.items, dtype=np.uint8))
    elif ds.modality == "text":
        pd.DataFrame({"text": pd.Series(ds.items, dtype="string")}).to_parquet(folder / "items.parquet", index=False)
    elif ds.modality == "tokens":
        assert ds.tags is not None  # a token Dataset always has tags
        table = pa.table({"tokens": _sentences_column(ds.items), "tags": _sentences_column(ds.tags)})
        pq.write_table(table, folder / "items.parquet")
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
    tags = None
    if modality == "image":
        items = np.load(folder / "items.npy", mmap_mode="r")
    elif modality == "tokens":
        sentences = pq.read_table(folder / "items.parquet")
        items, tags = _read_sentences(sentences.column("tokens")), _read_sentences(sentences.column("tags"))
    else:
        table = pd.read_parquet(folder / "items.parquet")
        items = table["text"].to_numpy(dtype=object) if modality == "text" else table
    return Dataset(
        name=name, modality=modality, items=items, labels=rows["label"].to_numpy(np.int64),
        class_names=class_names, split=rows["split"].to_numpy(np.int8), meta=rows.drop(columns=list(RESERVED_COLUMNS)),
        tags=tags,
    )  # fmt: skip
