"""One Dataset model for text, image and tabular data, and the loaders that build it.

A ``Dataset`` is what every other module works on:

- ``items``: text → ``np.ndarray[object]`` of ``str``, shape (n,); image → ``np.ndarray[uint8]``
  of shape (n, H, W) (grayscale) or (n, H, W, 3) (RGB); tabular → ``pd.DataFrame`` (n, d) of
  feature columns.
- ``labels``: ``int64`` (n,), an index into ``class_names``.
- ``split``: ``int8`` (n,), an index into ``SPLITS`` (train / val / test).
- ``meta``: ``pd.DataFrame`` (n, m) of extra columns used as slices (domain, source, rater
  agreement, …); may have no columns.

Loaders never write anything: they parse, validate and return a ``LoadResult`` (the dataset plus
warnings and skipped items) or raise ``DataError`` with a message that says what to change. The
store writes a dataset only once it is whole.
"""

from __future__ import annotations

import codecs
import gzip
import io
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from core.errors import DataError

SPLITS = ("train", "val", "test")
MODALITIES = ("text", "image", "tabular")
MAX_CLASSES = 1000  # a "label" column with more distinct values is almost surely not a label
SPLIT_ALIASES = {
    "train": 0, "training": 0, "tr": 0,
    "val": 1, "valid": 1, "validation": 1, "dev": 1,
    "test": 2, "testing": 2, "eval": 2, "te": 2,
}
LABEL_COLUMN_NAMES = ("label", "labels", "class", "target", "y", "category", "sentiment")
TEXT_COLUMN_NAMES = ("text", "sentence", "review", "content", "body", "message", "tweet", "document")
SPLIT_COLUMN_NAMES = ("split", "subset", "fold_name")


@dataclass
class Dataset:
    name: str
    modality: str
    items: Any
    labels: np.ndarray
    class_names: list[str]
    split: np.ndarray
    meta: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.split = np.asarray(self.split, dtype=np.int8)
        n = len(self.labels)
        if len(self.items) != n or len(self.split) != n or (len(self.meta.columns) and len(self.meta) != n):
            raise ValueError(
                f"items ({len(self.items)}), labels ({n}), split ({len(self.split)}) and meta "
                f"({len(self.meta)}) must have the same length"
            )
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError("labels must index class_names")
        if len(self.meta.columns) == 0:
            self.meta = pd.DataFrame(index=pd.RangeIndex(n))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def split_names(self) -> np.ndarray:
        return np.asarray(SPLITS, dtype=object)[self.split]

    def subset(self, index: np.ndarray, name: str | None = None) -> "Dataset":
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
        )


@dataclass
class LoadResult:
    dataset: Dataset
    warnings: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)


# --------------------------------------------------------------------------- splits


def stratified_split(
    labels: np.ndarray, *, val: float = 0.1, test: float = 0.1, seed: int = 0, holdout_from: np.ndarray | None = None
) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test) with the same class mix in every split.

    Per class, ``floor(n * val)`` items go to val and ``floor(n * test)`` to test, chosen by a
    seeded shuffle; the rest stay in train. A class with fewer than ``1 / val`` items therefore
    stays wholly in train (the coverage table shows it), rather than losing its only examples.

    Parameters
    ----------
    labels : (n,) int array
    holdout_from : (n,) bool array, optional
        Only these rows may move to val/test (e.g. the given train split when only test is given).
    """
    labels = np.asarray(labels)
    out = np.zeros(len(labels), dtype=np.int8)
    rng = np.random.default_rng(seed)
    allowed = np.ones(len(labels), bool) if holdout_from is None else np.asarray(holdout_from, bool)
    for c in np.unique(labels):
        idx = np.flatnonzero((labels == c) & allowed)
        rng.shuffle(idx)
        n_val, n_test = int(len(idx) * val), int(len(idx) * test)
        out[idx[:n_val]] = 1
        out[idx[n_val : n_val + n_test]] = 2
    return out


def parse_split_column(values: pd.Series) -> np.ndarray:
    """Map a user's split column (train/val/test and common aliases) to split codes."""
    norm = values.astype(str).str.strip().str.lower()
    unknown = sorted(set(norm.unique()) - set(SPLIT_ALIASES))
    if unknown:
        raise DataError(
            f"The split column has values {unknown[:5]} that are not train/val/test. "
            "Rename them to train, val or test, or choose no split column and let Gapscope make one."
        )
    return norm.map(SPLIT_ALIASES).to_numpy(np.int8)


def encode_labels(values: pd.Series, *, column: str = "label") -> tuple[np.ndarray, list[str], list[str]]:
    """Turn a label column into (codes, class_names, warnings), rejecting columns that are not labels.

    Rows without a label must be removed by the caller first. Class names are sorted naturally
    (numbers as numbers), so digits come out 0..9.
    """
    if len(values) == 0:
        raise DataError("The dataset has no labelled rows. Add rows with a value in the label column.")
    as_str = values.astype(str).str.strip()
    uniques = pd.unique(as_str)
    if len(uniques) > MAX_CLASSES:
        raise DataError(
            f"Column '{column}' has {len(uniques):,} distinct values; a label column has at most "
            f"{MAX_CLASSES:,}. Pick the column that holds the class, or bin this one into classes first."
        )
    if len(uniques) < 2:
        raise DataError(
            f"Every row has the same label ('{uniques[0]}'). A classifier needs at least two classes: "
            "add examples of another class, or pick a different label column."
        )

    def key(s: str):
        try:
            return (0, float(s), s)
        except ValueError:
            return (1, 0.0, s)

    class_names = sorted(uniques, key=key)
    lookup = {c: i for i, c in enumerate(class_names)}
    codes = as_str.map(lookup).to_numpy(np.int64)
    warnings = []
    counts = np.bincount(codes, minlength=len(class_names))
    singletons = [class_names[i] for i in np.flatnonzero(counts == 1)]
    if singletons:
        warnings.append(
            f"{len(singletons)} class(es) have a single example ({', '.join(map(str, singletons[:5]))}"
            f"{'…' if len(singletons) > 5 else ''}); they stay in train and cannot be evaluated."
        )
    return codes, class_names, warnings


# --------------------------------------------------------------------------- tables (csv/tsv/parquet/jsonl)


def decode_text(raw: bytes) -> tuple[str, list[str]]:
    """Decode uploaded text: UTF-8 (with or without BOM) or UTF-16 with BOM; else Windows-1252 /
    Latin-1, with a warning that says how to avoid the guess."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16"), []
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as err:
        position = err.start
    for enc in ("cp1252", "latin-1"):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        return text, [
            f"The file is not valid UTF-8 (first bad byte at offset {position}); it was read as "
            f"{'Windows-1252' if enc == 'cp1252' else 'Latin-1'}. If accents look wrong, save the file "
            "as UTF-8 and upload it again."
        ]
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def read_table(data: bytes, filename: str) -> tuple[pd.DataFrame, list[str]]:
    """Parse CSV, TSV, Parquet or JSON Lines bytes into a DataFrame (no column roles yet)."""
    if len(data) == 0:
        raise DataError(f"'{filename}' is empty (0 bytes). Upload a file with a header row and data rows.")
    ext = Path(filename).suffix.lower()
    warnings: list[str] = []
    try:
        if ext == ".parquet":
            df = pd.read_parquet(io.BytesIO(data))
        elif ext in (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json"):
            text, warnings = decode_text(data)
            if not text.strip():
                raise DataError(f"'{filename}' holds only whitespace. Upload a file with a header row and data rows.")
            if ext in (".jsonl", ".ndjson", ".json"):
                df = pd.read_json(io.StringIO(text), lines=ext != ".json")
            else:
                sep = "\t" if ext == ".tsv" else None  # None: sniff , ; | or tab
                df = pd.read_csv(io.StringIO(text), sep=sep, engine="python", dtype_backend="numpy_nullable")
        else:
            raise DataError(
                f"'{filename}': unsupported file type '{ext or '(none)'}'. Use .csv, .tsv, .parquet or "
                ".jsonl for tables, or a .zip of class folders for images."
            )
    except DataError:
        raise
    except Exception as err:  # pandas / pyarrow raise many kinds; the user needs one message
        raise DataError(
            f"Could not parse '{filename}' as {ext.lstrip('.').upper()}: {str(err).splitlines()[0][:200]}. "
            "Check that the file is not truncated and has a header row."
        ) from err
    if df.shape[1] == 0 or len(df) == 0:
        raise DataError(f"'{filename}' has no data rows. Upload a file with a header row and at least two labelled rows.")
    df.columns = [str(c).strip() for c in df.columns]
    if len(set(df.columns)) != len(df.columns):
        raise DataError(f"'{filename}' has repeated column names. Give every column a distinct header.")
    return df, warnings


@dataclass
class TableRoles:
    """Which column plays which part. ``text`` is None for tabular data (features = the rest)."""

    label: str
    text: str | None = None
    split: str | None = None
    meta: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)


@dataclass
class TableGuess:
    roles: TableRoles | None
    label_candidates: list[str]
    text_candidates: list[str]
    question: str | None  # None when the guess is unambiguous; else what the user must choose


def _is_texty(col: pd.Series) -> bool:
    if not (pd.api.types.is_string_dtype(col) or col.dtype == object):
        return False
    s = col.dropna().astype(str)
    if s.empty:
        return False
    return s.str.len().mean() >= 15 and s.nunique() > 0.5 * len(s)


def guess_roles(df: pd.DataFrame) -> TableGuess:
    """Guess the label / text / split columns; ask (``question``) when the guess is not safe."""
    cols = list(df.columns)
    lower = {c.lower(): c for c in cols}
    n = len(df)
    label_candidates = [
        c for c in cols
        if 2 <= df[c].nunique(dropna=True) <= min(MAX_CLASSES, max(2, n // 2)) and not _is_texty(df[c])
    ]
    text_candidates = [c for c in cols if _is_texty(df[c])]
    split = next((lower[s] for s in SPLIT_COLUMN_NAMES if s in lower), None)
    named_label = [lower[s] for s in LABEL_COLUMN_NAMES if s in lower]
    label_candidates = named_label + [c for c in label_candidates if c not in named_label and c != split]
    if not named_label:
        msg = (
            "No column is named like a label (label, class, target, y, category, sentiment). "
            "Choose the label column below, or rename it to 'label'."
        )
        if not label_candidates:
            msg = (
                "No column can serve as the label: a label column has between 2 and "
                f"{MAX_CLASSES:,} distinct values. Add a 'label' column and upload again."
            )
        return TableGuess(None, label_candidates, text_candidates, msg)
    label = named_label[0]
    named_text = [lower[s] for s in TEXT_COLUMN_NAMES if s in lower]
    texts = [c for c in text_candidates if c != label]
    if named_text:
        text = named_text[0]
    elif len(texts) == 1:
        text = texts[0]
    elif len(texts) > 1:
        return TableGuess(
            None, label_candidates, texts,
            f"Several columns look like text ({', '.join(texts)}). Choose the one the model should read.",
        )
    else:
        text = None
    rest = [c for c in cols if c not in (label, text, split)]
    if text is not None:
        roles = TableRoles(label=label, text=text, split=split, meta=[c for c in rest if df[c].nunique() <= 50])
    else:
        roles = TableRoles(label=label, split=split, features=rest)
    return TableGuess(roles, label_candidates, text_candidates, None)


def dataset_from_table(df: pd.DataFrame, roles: TableRoles, *, name: str, seed: int = 0) -> LoadResult:
    """Build a text or tabular Dataset from a DataFrame and the chosen column roles."""
    for col in [roles.label, roles.text, roles.split, *roles.meta, *roles.features]:
        if col is not None and col not in df.columns:
            raise DataError(f"Column '{col}' is not in the file. Columns are: {', '.join(map(str, df.columns))}.")
    if roles.text is not None and roles.text == roles.label:
        raise DataError("The text column and the label column must differ. Pick another text or label column.")
    warnings: list[str] = []
    labelled = df[roles.label].notna() & (df[roles.label].astype(str).str.strip() != "")
    if not labelled.all():
        warnings.append(f"{int((~labelled).sum()):,} row(s) without a label were left out.")
        df = df.loc[labelled].reset_index(drop=True)
    labels, class_names, w = encode_labels(df[roles.label], column=roles.label)
    warnings += w
    if roles.split:
        split = parse_split_column(df[roles.split])
        if not (split == 0).any():
            raise DataError("The split column has no 'train' rows. Mark some rows as train, or choose no split column.")
        if not (split == 1).any():
            split = np.where(split == 0, stratified_split(labels, val=0.1, test=0.0, seed=seed, holdout_from=split == 0), split).astype(np.int8)
            warnings.append("No 'val' rows were given; 10% of train (per class) was set aside as val.")
    else:
        split = stratified_split(labels, seed=seed)
    meta = df[roles.meta].reset_index(drop=True) if roles.meta else pd.DataFrame(index=pd.RangeIndex(len(df)))
    if roles.text is not None:
        text = df[roles.text]
        n_null = int(text.isna().sum())
        if n_null:
            warnings.append(f"{n_null:,} row(s) have no text; they are kept as empty texts and listed in the profile.")
        items = text.fillna("").astype(str).to_numpy(dtype=object)
        modality = "text"
    else:
        feats = roles.features or [c for c in df.columns if c not in (roles.label, roles.split, *roles.meta)]
        if not feats:
            raise DataError("There are no feature columns besides the label. Add feature columns, or pick a text column.")
        items = df[feats].reset_index(drop=True)
        modality = "tabular"
    ds = Dataset(name=name, modality=modality, items=items, labels=labels, class_names=class_names, split=split, meta=meta)
    return LoadResult(ds, warnings)


def load_table(data: bytes, filename: str, roles: TableRoles | None = None, *, name: str | None = None) -> LoadResult:
    """Parse a table upload and build a Dataset; without ``roles`` the guess must be unambiguous."""
    df, warnings = read_table(data, filename)
    if roles is None:
        guess = guess_roles(df)
        if guess.roles is None:
            raise DataError(guess.question or "Choose the label column.")
        roles = guess.roles
    result = dataset_from_table(df, roles, name=name or Path(filename).stem)
    result.warnings[:0] = warnings
    return result


# --------------------------------------------------------------------------- IDX (MNIST format)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(source: str | Path | bytes | BinaryIO) -> np.ndarray:
    """Read an IDX array (MNIST format), gzip or plain. Raises DataError on a malformed file."""
    if isinstance(source, (str, Path)):
        raw = Path(source).read_bytes()
    elif isinstance(source, bytes):
        raw = source
    else:
        raw = source.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"The IDX file is a damaged gzip ({err}). Download or copy it again.") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError("Not an IDX file (bad magic number). IDX files start with two zero bytes, a type code and the rank.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError("The IDX header is truncated. Download or copy the file again.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    need = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header < need:
        raise DataError(f"The IDX file is truncated: it needs {need:,} data bytes, has {len(raw) - header:,}. Copy it again.")
    return np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape)), offset=header).reshape(shape)


def dataset_from_idx(
    train_images: Any, train_labels: Any, test_images: Any = None, test_labels: Any = None,
    *, name: str, class_names: list[str] | None = None, seed: int = 0,
) -> LoadResult:
    """Build an image Dataset from IDX files; val is carved (stratified, 1/12 of train) from train."""
    xs, ys, splits = [], [], []
    for images, labels, code in ((train_images, train_labels, 0), (test_images, test_labels, 2)):
        if images is None:
            continue
        x, y = read_idx(images), read_idx(labels)
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(
                f"IDX images must be (n, height, width) and labels (n,) of the same n; got {x.shape} and {y.shape}."
            )
        xs.append(x)
        ys.append(y.astype(np.int64))
        splits.append(np.full(len(y), code, np.int8))
    x, y, split = np.concatenate(xs), np.concatenate(ys), np.concatenate(splits)
    if x.dtype != np.uint8:
        raise DataError(f"IDX images must be unsigned bytes; this file holds {x.dtype}.")
    names = class_names or [str(i) for i in range(int(y.max()) + 1)]
    if y.min() < 0 or y.max() >= len(names):
        raise DataError(f"IDX labels run from {y.min()} to {y.max()}, outside the {len(names)} class names.")
    # Fashion-MNIST and MNIST ship train/test only: hold out 1/12 of train (5k of 60k) as val.
    split = np.where(split == 0, stratified_split(y, val=1 / 12, test=0.0, seed=seed, holdout_from=split == 0), split)
    if test_images is None:
        split = stratified_split(y, seed=seed)
    ds = Dataset(name=name, modality="image", items=np.ascontiguousarray(x), labels=y, class_names=names, split=split)
    return LoadResult(ds)


def dataset_from_images(result: Any, *, name: str, seed: int = 0) -> LoadResult:
    """Build an image Dataset from ``core.imagefiles.ImageFolderResult`` (zip or folder upload)."""
    if len(result.labels) == 0:
        reasons = "; ".join(f"{n}: {r}" for n, r in result.skipped[:5])
        raise DataError(
            "No readable images were found. Put images (PNG/JPEG/BMP/WebP) in one folder per class, "
            f"e.g. cats/1.png, dogs/2.png. {('Skipped: ' + reasons) if reasons else ''}".strip()
        )
    labels, class_names, warnings = encode_labels(pd.Series(result.labels), column="folder")
    if result.splits is not None and any(s is not None for s in result.splits):
        split = parse_split_column(pd.Series([s or "train" for s in result.splits]))
        if not (split == 1).any():
            split = np.where(split == 0, stratified_split(labels, val=0.1, test=0.0, seed=seed, holdout_from=split == 0), split)
    else:
        split = stratified_split(labels, seed=seed)
    meta = pd.DataFrame({
        "file": list(result.paths),
        "orig_width": np.asarray(result.orig_sizes)[:, 0],
        "orig_height": np.asarray(result.orig_sizes)[:, 1],
    })
    if result.skipped:
        warnings.append(f"{len(result.skipped):,} file(s) were skipped; they are listed below.")
    ds = Dataset(name=name, modality="image", items=result.images, labels=labels, class_names=class_names, split=split, meta=meta)
    return LoadResult(ds, warnings, list(result.skipped))


def content_hashes(ds: Dataset) -> np.ndarray:
    """A 64-bit content hash per item (exact duplicates share it). Text is hashed as given, stripped."""
    import hashlib

    def h(b: bytes) -> int:
        return int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "little", signed=True)

    if ds.modality == "image":
        flat = np.ascontiguousarray(ds.items).reshape(len(ds), -1)
        return np.fromiter((h(row.tobytes()) for row in flat), dtype=np.int64, count=len(ds))
    if ds.modality == "text":
        return np.fromiter((h(str(t).strip().encode("utf-8", "surrogatepass")) for t in ds.items), dtype=np.int64, count=len(ds))
    return pd.util.hash_pandas_object(ds.items, index=False).to_numpy().view(np.int64)


def describe(ds: Dataset) -> str:
    """One line: '70,000 image items (28×28 grayscale) · 10 classes'."""
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
