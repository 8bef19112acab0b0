"""Tables (CSV, TSV, Parquet, JSON Lines) → a text or tabular ``Dataset``, with column roles guessed."""

from __future__ import annotations

import codecs
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from core.data.dataset import RESERVED_COLUMNS, UNLABELLED, Dataset, LoadResult
from core.data.labels import MAX_CLASSES, encode_labels
from core.data.splits import parse_split_column, stratified_split
from core.errors import DataError

LABEL_COLUMN_NAMES = ("label", "labels", "class", "target", "y", "category", "sentiment")
TEXT_COLUMN_NAMES = ("text", "sentence", "review", "content", "body", "message", "tweet", "document")
SPLIT_COLUMN_NAMES = ("split", "subset", "fold_name")


VAL_SHARE = 0.1  # share of each class's train items set aside as val when the upload gives no val rows
SPLIT_SEED = 0  # seed of every split an import makes
_C1_BYTES = re.compile(rb"[\x80-\x9f]")  # Windows-1252's letters and quotes; Latin-1's control codes


@dataclass(frozen=True)
class TextEncoding:
    """How uploaded text was decoded: ``name`` as shown ("UTF-8", "UTF-16", "Windows-1252",
    "Latin-1"); ``bad_byte`` is the file offset of the first byte that is not UTF-8 when the
    decoding fell back to a single-byte encoding, else None."""

    name: str
    bad_byte: int | None = None

    @property
    def fallback(self) -> bool:
        return self.bad_byte is not None


def _decode(raw: bytes) -> tuple[str, TextEncoding]:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; else Latin-1 when no byte is in 0x80–0x9F
    (where alone Windows-1252 differs from it), else Windows-1252, else Latin-1 (which decodes
    every byte string)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16"), TextEncoding("UTF-16")
    try:
        return raw.decode("utf-8-sig"), TextEncoding("UTF-8")
    except UnicodeDecodeError as err:  # utf-8-sig counts from after the BOM
        bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
        position = err.start + bom
    body = raw[bom:]  # a BOM read as Latin-1 would be "ï»¿" glued to the first column's name
    if _C1_BYTES.search(body) is None:
        return body.decode("latin-1"), TextEncoding("Latin-1", position)
    try:
        return body.decode("cp1252"), TextEncoding("Windows-1252", position)
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90 and 0x9D have no Windows-1252 character
        return body.decode("latin-1"), TextEncoding("Latin-1", position)


def decode_text(raw: bytes) -> tuple[str, list[str]]:
    """Decode uploaded text: UTF-8 (with or without BOM) or UTF-16 with BOM; else Windows-1252 /
    Latin-1, with a warning that says how to avoid the guess."""
    text, encoding = _decode(raw)
    return text, _fallback_warnings(encoding)


def _fallback_warnings(encoding: TextEncoding) -> list[str]:
    if not encoding.fallback:
        return []
    return [
        f"The file is not valid UTF-8 (first bad byte at offset {encoding.bad_byte}); it was read as {encoding.name}. "
        "If accents look wrong, save the file as UTF-8 and upload it again."
    ]


class TableRead(NamedTuple):
    """A parsed table upload: its cells, what reading it changed (warnings), and how its text was
    decoded (None for Parquet)."""

    df: pd.DataFrame
    warnings: list[str]
    encoding: TextEncoding | None


def read_table(data: bytes, filename: str) -> tuple[pd.DataFrame, list[str]]:
    """Parse CSV, TSV, Parquet or JSON Lines bytes into a DataFrame (no column roles yet)."""
    df, warnings, _ = read_table_encoded(data, filename)
    return df, warnings


def read_table_encoded(data: bytes, filename: str) -> TableRead:
    """``read_table``, also saying how the text was decoded (for the upload preview)."""
    if len(data) == 0:
        raise DataError(f"'{filename}' is empty (0 bytes). Upload a file with a header row and data rows.")
    ext = Path(filename).suffix.lower()
    warnings: list[str] = []
    encoding: TextEncoding | None = None
    try:
        if ext == ".parquet":
            df = pd.read_parquet(io.BytesIO(data))
        elif ext in (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json"):
            text, encoding = _decode(data)
            warnings = _fallback_warnings(encoding)
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
    return TableRead(_plain_cells(df, warnings), warnings, encoding)


def _plain_cells(df: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    """Every cell made storable and comparable: nested values (JSON objects and arrays, Parquet
    lists) become JSON text, raw bytes become text, and a column mixing kinds of value (numbers and
    words, booleans and words) becomes text; each changed column is named in a warning."""
    for col, dtype in zip(list(df.columns), list(df.dtypes)):
        if dtype != np.dtype(object):
            continue
        values = df[col].to_numpy(dtype=object)
        missing = pd.isna(df[col]).to_numpy()
        nested = np.array([isinstance(v, (dict, list, tuple, set, np.ndarray)) for v in values], dtype=bool)
        raw = np.array([isinstance(v, (bytes, bytearray)) for v in values], dtype=bool)
        out = values.copy()
        for i in np.flatnonzero(nested):
            v = out[i]
            out[i] = json.dumps(v.tolist() if isinstance(v, np.ndarray) else sorted(v, key=str) if isinstance(v, set) else v, default=str)
        bad_bytes = 0
        for i in np.flatnonzero(raw):
            try:
                out[i] = bytes(out[i]).decode("utf-8")
            except UnicodeDecodeError:
                out[i] = bytes(out[i]).decode("utf-8", errors="replace")
                bad_bytes += 1
        kinds = {type(v) for v, m in zip(out, missing) if not m}
        mixed = len(kinds) > 1
        if mixed:
            out = np.array([None if m else str(v) for v, m in zip(out, missing)], dtype=object)
        if nested.any() or raw.any() or mixed:
            df[col] = pd.array(out, dtype="string") if mixed or kinds <= {str} else out
        if nested.any():
            warnings.append(
                f"Column '{col}' holds nested values (objects or lists) in {int(nested.sum()):,} row(s); they were kept as JSON text."
            )
        if bad_bytes:
            warnings.append(f"Column '{col}' has {bad_bytes:,} value(s) that are not valid UTF-8; bad bytes were replaced by �.")
        if mixed and not nested.any():
            warnings.append(f"Column '{col}' mixes kinds of value ({', '.join(sorted(k.__name__ for k in kinds))}); it was read as text.")
    return df


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


def _column_stats(df: pd.DataFrame) -> pd.DataFrame:
    """Per column: ``nunique`` (distinct non-missing values) and ``texty`` (free text: strings 15
    characters long on average, mostly distinct).

    One pass over the cells, not a chain of pandas calls per column: a table thousands of columns
    wide (each call costs ~0.1 ms however short the column) is guessed in time linear in its cells.
    """
    nunique = np.zeros(len(df.columns), np.int64)
    texty = np.zeros(len(df.columns), bool)
    dtypes = list(df.dtypes)
    numeric = [j for j, dt in enumerate(dtypes) if pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt)]
    if numeric:
        block = df.iloc[:, numeric].to_numpy(dtype=np.float64, na_value=np.nan)
        ordered = np.sort(block, axis=0)  # NaN last
        finite = ~np.isnan(ordered)
        changes = (np.diff(ordered, axis=0) != 0) & finite[1:]
        nunique[numeric] = np.where(finite.any(axis=0), 1 + changes.sum(axis=0), 0)
    is_numeric = set(numeric)
    others = [j for j in range(len(dtypes)) if j not in is_numeric]
    cells = df.iloc[:, others].to_numpy(dtype=object) if others else np.empty((len(df), 0), object)
    for k, j in enumerate(others):
        values = [v for v in cells[:, k].tolist() if not (v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v))]
        if not values:
            continue
        try:
            nunique[j] = len(set(values))
        except TypeError:  # unhashable cells (lists): count their text
            nunique[j] = len(set(map(str, values)))
        if pd.api.types.is_string_dtype(dtypes[j]) or dtypes[j] == np.dtype(object):
            as_text = [v if isinstance(v, str) else str(v) for v in values]
            texty[j] = sum(map(len, as_text)) / len(as_text) >= 15 and len(set(as_text)) > 0.5 * len(as_text)
    return pd.DataFrame({"nunique": nunique, "texty": texty}, index=df.columns)


def guess_roles(df: pd.DataFrame) -> TableGuess:
    """Guess the label / text / split columns; ask (``question``) when the guess is not safe."""
    cols = list(df.columns)
    lower: dict[str, str] = {}
    for c in cols:  # an exact lower-case name wins over another spelling ("label" over "Label")
        lower[c.lower()] = c if c == c.lower() else lower.get(c.lower(), c)
    n = len(df)
    stats = _column_stats(df)
    distinct, texty = dict(zip(cols, stats["nunique"].tolist())), dict(zip(cols, stats["texty"].tolist()))
    label_candidates = [c for c in cols if 2 <= distinct[c] <= min(MAX_CLASSES, max(2, n // 2)) and not texty[c]]
    text_candidates = [c for c in cols if texty[c]]
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
                "No column can serve as the label: a label column is not free text and has between 2 and "
                f"{min(MAX_CLASSES, max(2, n // 2)):,} distinct values (at most {MAX_CLASSES:,}, and at most half the rows, "
                "so that classes have several items). Add a 'label' column and upload again."
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
            None,
            label_candidates,
            texts,
            f"Several columns look like text ({', '.join(texts)}). Choose the one the model should read.",
        )
    else:
        text = None
    rest = [c for c in cols if c not in (label, text, split)]
    if text is not None:
        roles = TableRoles(label=label, text=text, split=split, meta=[c for c in rest if distinct[c] <= 50])
    else:
        roles = TableRoles(label=label, split=split, features=rest)
    return TableGuess(roles, label_candidates, text_candidates, None)


@dataclass(frozen=True)
class SplitPlan:
    """The split an import stores: ``split`` (n,) codes (0 train, 1 val, 2 test); ``carved_val``,
    the train items set aside as val because the split column gives no val rows (0 otherwise);
    ``made``, whether there was no split column and the whole split was made."""

    split: np.ndarray
    carved_val: int = 0
    made: bool = False


def _check_roles(df: pd.DataFrame, roles: TableRoles) -> None:
    for col in [roles.label, roles.text, roles.split, *roles.meta, *roles.features]:
        if col is not None and col not in df.columns:
            raise DataError(f"Column '{col}' is not in the file. Columns are: {', '.join(map(str, df.columns))}.")
    if roles.text is not None and roles.text == roles.label:
        raise DataError("The text column and the label column must differ. Pick another text or label column.")


def _table_labels(df: pd.DataFrame, roles: TableRoles) -> tuple[np.ndarray, list, np.ndarray, list[str]]:
    """Label codes (``UNLABELLED`` for an empty label), class names, which rows have a label, warnings."""
    has_label = (df[roles.label].notna() & (df[roles.label].astype(str).str.strip() != "")).to_numpy()
    if not has_label.any():
        raise DataError(
            f"No row has a label in column '{roles.label}': the dataset has no labelled rows. Fill in labels (empty labels "
            "make an unlabelled pool, which needs labelled rows beside it), or pick the column that holds the classes."
        )
    codes, class_names, warnings = encode_labels(df.loc[has_label, roles.label], column=roles.label)
    labels = np.full(len(df), UNLABELLED, np.int64)
    labels[has_label] = codes
    return labels, class_names, has_label, list(warnings)


def _table_split(df: pd.DataFrame, roles: TableRoles, labels: np.ndarray, has_label: np.ndarray, seed: int) -> tuple[SplitPlan, list[str]]:
    """The split codes: the split column's (val carved out of train when it has none), else a stratified split."""
    if not roles.split:
        return SplitPlan(stratified_split(labels, seed=seed, holdout_from=has_label), made=True), []
    warnings: list[str] = []
    split = parse_split_column(df[roles.split])
    moved = int(((split != 0) & ~has_label).sum())
    if moved:
        warnings.append(f"{moved:,} unlabelled row(s) marked val or test were put in the train split's pool: evaluation needs labels.")
    split = np.where(has_label, split, 0).astype(np.int8)
    if not (split == 0).any():
        raise DataError("The split column has no 'train' rows. Mark some rows as train, or choose no split column.")
    if (split == 1).any():
        return SplitPlan(split), warnings
    holdout = (split == 0) & has_label
    carved = stratified_split(labels, val=VAL_SHARE, test=0.0, seed=seed, holdout_from=holdout)
    split = np.where(split == 0, carved, split).astype(np.int8)
    n_val = int((split == 1).sum())
    warnings.append(f"No 'val' rows were given; {VAL_SHARE:.0%} of train (per class) was set aside as val ({n_val:,} items).")
    return SplitPlan(split, carved_val=n_val), warnings


def table_split(df: pd.DataFrame, roles: TableRoles, *, seed: int = SPLIT_SEED) -> SplitPlan:
    """The split importing ``df`` with ``roles`` stores, as ``dataset_from_table`` makes it."""
    _check_roles(df, roles)
    labels, _, has_label, _ = _table_labels(df, roles)
    return _table_split(df, roles, labels, has_label, seed)[0]


def dataset_from_table(df: pd.DataFrame, roles: TableRoles, *, name: str, seed: int = SPLIT_SEED) -> LoadResult:
    """Build a text or tabular Dataset from a DataFrame and the chosen column roles."""
    _check_roles(df, roles)
    labels, class_names, has_label, warnings = _table_labels(df, roles)
    n_pool = int((~has_label).sum())
    if n_pool:
        warnings.append(
            f"{n_pool:,} row(s) have no label: they are kept as the unlabelled pool, in train, for pseudo-labelling "
            "and label spreading; everything that needs a label leaves them out."
        )
    plan, split_warnings = _table_split(df, roles, labels, has_label, seed)
    warnings += split_warnings
    split = plan.split
    meta = df[roles.meta].reset_index(drop=True) if roles.meta else pd.DataFrame(index=pd.RangeIndex(len(df)))
    clashes = [c for c in meta.columns if c in RESERVED_COLUMNS]
    if clashes:
        meta = meta.rename(columns={c: f"{c} (column)" for c in clashes})
        warnings.append(
            f"Column(s) {', '.join(map(repr, clashes))} kept as '<name> (column)': Gapscope stores the label and split under those names."
        )
    if roles.text is not None:
        text = df[roles.text]
        n_null = int(text.isna().sum())
        if n_null:
            warnings.append(f"{n_null:,} row(s) have no text; they are kept as empty texts and listed in the profile.")
        items = text.astype("string").fillna("").to_numpy(dtype=object)
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
