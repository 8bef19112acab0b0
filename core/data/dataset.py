"""The ``Dataset`` model every other module works on, for text, image, tabular and token data.

- ``items``: text → ``np.ndarray[object]`` of ``str``, shape (n,); image → ``np.ndarray[uint8]``
  of shape (n, H, W) (grayscale) or (n, H, W, 3) (RGB); tabular → ``pd.DataFrame`` (n, d) of
  feature columns; tokens → ``np.ndarray[object]`` (n,) of sentences, each a ``tuple[str, ...]``
  of tokens.
- ``tags``: tokens only (None otherwise): ``np.ndarray[object]`` (n,), each sentence's IOB2 tags
  (``tuple[str, ...]``, as long as its tokens). An ``I-X`` that continues no span is allowed and
  opens nothing (``core.tokens.spans`` reads strictly); loaders repair such tags to ``B-X``.
- ``labels``: ``int64`` (n,), an index into ``class_names``, or ``UNLABELLED`` (-1) for an item of
  the *unlabelled pool* (always in the train split): rows uploaded with an empty label, which only
  pseudo-labelling and label spreading use; everything that needs a label skips them. A sentence's
  label is its rarest entity type (``core.tokens.data.token_dataset`` computes it).
- ``split``: ``int8`` (n,), an index into ``SPLITS`` (train / val / test).
- ``meta``: ``pd.DataFrame`` (n, m) of extra columns used as slices (domain, source, rater
  agreement, …); may have no columns.

Loaders (``core.data.tables``, ``idx``, ``imagefiles``, ``demos``) never write anything: they
parse, validate and return a ``LoadResult`` (the dataset plus warnings and skipped items) or raise
``DataError`` with a message that says what to change. The store writes a dataset only once it is
whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.tokens.schemes import TagScheme, is_iob2_tag

SPLITS = ("train", "val", "test")  # split codes 0, 1, 2
MODALITIES = ("text", "image", "tabular", "tokens")
RESERVED_COLUMNS = ("label", "split")  # a stored version's own row columns: no meta column may use them
UNLABELLED = -1  # the label of an item of the unlabelled pool


@dataclass
class Dataset:
    name: str
    modality: str
    items: Any
    labels: np.ndarray
    class_names: list[str]
    split: np.ndarray
    meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    tags: np.ndarray | None = None  # tokens only: (n,) object, each a tuple of IOB2 tags

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.modality == "tokens":
            self.items, self.tags = _check_sentences(self.items, self.tags)
        elif self.tags is not None:
            raise ValueError(f"only token datasets have tags; a {self.modality} dataset has tags=None")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.split = np.asarray(self.split, dtype=np.int8)
        n = len(self.labels)
        if len(self.items) != n or len(self.split) != n or (len(self.meta.columns) and len(self.meta) != n):
            raise ValueError(
                f"items ({len(self.items)}), labels ({n}), split ({len(self.split)}) and meta ({len(self.meta)}) must have the same length"
            )
        if n and (self.labels.min() < UNLABELLED or self.labels.max() >= len(self.class_names)):
            raise ValueError("labels must index class_names (or be -1: unlabelled)")
        if n and ((self.labels == UNLABELLED) & (self.split != 0)).any():
            raise ValueError("unlabelled items belong to the train split (the pool); val and test items need labels")
        if len(self.meta.columns) == 0:
            self.meta = pd.DataFrame(index=pd.RangeIndex(n))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def labelled(self) -> np.ndarray:
        """(n,) bool: the item has a label (is not in the unlabelled pool)."""
        return self.labels != UNLABELLED

    @property
    def n_unlabelled(self) -> int:
        return int((self.labels == UNLABELLED).sum())

    def label_name(self, i: int) -> str:
        """The class name of item ``i``, or "(unlabelled)"."""
        c = int(self.labels[i])
        return "(unlabelled)" if c == UNLABELLED else str(self.class_names[c])

    def label_names(self, index: np.ndarray | None = None) -> np.ndarray:
        """Class names (object array) of the items ``index`` (default all); "(unlabelled)" for the pool."""
        labels = self.labels if index is None else self.labels[index]
        names = np.asarray([*map(str, self.class_names), "(unlabelled)"], dtype=object)
        return names[np.where(labels == UNLABELLED, len(self.class_names), labels)]

    @property
    def split_names(self) -> np.ndarray:
        return np.asarray(SPLITS, dtype=object)[self.split]

    def item_ids(self) -> np.ndarray:
        """Each item's identity across versions: its row in the imported version (the meta column
        ``source_item`` that cleanings and simulations write), else its row here. Item numbers on
        pages are these, so an item keeps its number in every version derived from its import."""
        if "source_item" in self.meta.columns:
            return self.meta["source_item"].to_numpy(dtype=np.int64)
        return np.arange(len(self), dtype=np.int64)

    def subset(self, index: np.ndarray, name: str | None = None) -> Dataset:
        """A new Dataset with the rows ``index`` (ints or a boolean mask); class names are kept."""
        index = np.asarray(index)
        items = self.items.iloc[index].reset_index(drop=True) if isinstance(self.items, pd.DataFrame) else self.items[index]
        return Dataset(
            name=name or self.name,
            modality=self.modality,
            items=items,
            labels=self.labels[index],
            class_names=list(self.class_names),
            split=self.split[index],
            meta=self.meta.iloc[index].reset_index(drop=True),
            tags=None if self.tags is None else self.tags[index],
        )


def sentences_array(seqs: Any) -> np.ndarray:
    """An object array (n,) holding each of ``seqs`` as a tuple of str (numpy would otherwise
    broadcast equal-length tuples into a 2-D array)."""
    out = np.empty(len(seqs), dtype=object)
    for i, seq in enumerate(seqs):
        out[i] = seq if type(seq) is tuple else tuple(seq)
    return out


def _check_sentences(items: Any, tags: Any) -> tuple[np.ndarray, np.ndarray]:
    """Token items and tags as object arrays of tuples, checked: one tag per token, IOB2 tags only,
    no empty sentence, str tokens."""
    if tags is None:
        raise ValueError("a token dataset needs tags: one tuple of IOB2 tags per sentence")
    items, tags = sentences_array(items), sentences_array(tags)
    if len(items) != len(tags):
        raise ValueError(f"items ({len(items)}) and tags ({len(tags)}) must have the same length")
    seen: set[str] = set()
    for i, (toks, tg) in enumerate(zip(items, tags)):
        if len(toks) != len(tg) or not toks:
            raise ValueError(f"sentence {i} has {len(toks)} tokens and {len(tg)} tags: each needs at least one token and one tag per token")
        if not all(isinstance(t, str) for t in toks) or not all(isinstance(t, str) for t in tg):
            raise ValueError(f"sentence {i} has a token or tag that is not a str")
        seen.update(tg)
    bad = sorted(t for t in seen if not is_iob2_tag(t))
    if bad:
        raise ValueError(f"tags must be IOB2 (O, B-TYPE, I-TYPE); found {bad[:5]}")
    return items, tags


@dataclass
class LoadResult:
    dataset: Dataset
    warnings: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    tag_scheme: TagScheme | None = None  # tokens: the scheme the file used and what was repaired


def content_hashes(ds: Dataset) -> np.ndarray:
    """A 64-bit content hash per item (exact duplicates share it). Text is hashed as given, stripped;
    a sentence by its tokens joined by a space (not its tags: a relabelled sentence is the same item)."""

    def h(b: bytes) -> int:
        return int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "little", signed=True)

    if ds.modality == "image":
        flat = np.ascontiguousarray(ds.items).reshape(len(ds), -1)
        return np.fromiter((h(row.tobytes()) for row in flat), dtype=np.int64, count=len(ds))
    if ds.modality == "text":
        return np.fromiter((h(str(t).strip().encode("utf-8", "surrogatepass")) for t in ds.items), dtype=np.int64, count=len(ds))
    if ds.modality == "tokens":
        return np.fromiter((h(" ".join(s).encode("utf-8", "surrogatepass")) for s in ds.items), dtype=np.int64, count=len(ds))
    return pd.util.hash_pandas_object(ds.items, index=False).to_numpy().view(np.int64)


def describe(ds: Dataset) -> str:
    """One line: '70,000 image items (28×28 grayscale) · 10 classes'; for tokens '14,041 token
    items (sentences) · 4 entity types · 203,621 tokens'."""
    if ds.modality == "tokens":
        from core.tokens.spans import entity_types

        n_types = len(entity_types(ds.tags if ds.tags is not None else []))
        n_tokens = sum(map(len, ds.items))
        return f"{len(ds):,} token items (sentences) · {n_types:,} entity type{'s' if n_types != 1 else ''} · {n_tokens:,} tokens"
    if ds.modality == "image":
        shape = ds.items.shape[1:]
        kind = f"{shape[1]}×{shape[0]} {'RGB' if len(shape) == 3 else 'grayscale'}"
    elif ds.modality == "text":
        kind = "texts"
    else:
        kind = f"{ds.items.shape[1]} features"
    return f"{len(ds):,} {ds.modality} items ({kind}) · {ds.n_classes} classes"


def filter_indices(ds: Dataset, *, classes: list[int] | None = None, splits: list[int] | None = None) -> np.ndarray:
    """Row indices whose label is in ``classes`` and split in ``splits`` (None = any)."""
    mask = np.ones(len(ds), dtype=bool)
    if classes is not None:
        mask &= np.isin(ds.labels, classes)
    if splits is not None:
        mask &= np.isin(ds.split, splits)
    return np.flatnonzero(mask)


def item_ref(ds: Dataset, i: int) -> str:
    """'#123 · train': the item's number in its import (``Dataset.item_ids``) and its split."""
    return f"#{int(ds.item_ids()[i])} · {SPLITS[ds.split[i]]}"
