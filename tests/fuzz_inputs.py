"""Seeded generator of hostile table uploads, shared by the fuzz test and ``benchmarks/fuzz_uploads.py``.

Each input is ``(filename, bytes)``: small tables with clashing or odd column names (label and
Label, split and Split, blanks), cells of every awkward kind (blanks, numbers in a text column,
unknown split values, nested objects and lists, invalid UTF-8, very long or non-Latin text), in
CSV, TSV, JSON Lines and Parquet, plus byte-level corruptions of valid files.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import numpy as np
import pandas as pd

NAMES = ["text", "label", "Label", "LABEL", "split", "Split", "class", "y", "domain", "x1", "x2", "", "label ", "review", "Unnamed: 0"]
CELLS: list[object] = [
    0,
    1,
    2,
    3.5,
    -1,
    float("nan"),
    None,
    "",
    " ",
    "train",
    "val",
    "test",
    "weird",
    "a",
    "b",
    "c",
    "ça va",
    "日本語のテキスト",
    "🙂🙃",
    "x" * 300,
    "1,2",
    '"quoted"',
    "line\nbreak",
    True,
    False,
    {"k": 1},
    [1, 2],
    b"\xff\xfe",
    b"ok",
]
FORMATS = [".csv", ".tsv", ".jsonl", ".parquet"]


def _cell(rng: np.random.Generator) -> object:
    return CELLS[int(rng.integers(len(CELLS)))]


def _table(rng: np.random.Generator) -> pd.DataFrame:
    n_cols = int(rng.integers(1, 6))
    names = [NAMES[int(i)] for i in rng.choice(len(NAMES), size=n_cols, replace=False)]
    n_rows = int(rng.integers(0, 25))
    # a column tends to hold one kind of value, as real files do; some are mixed
    data = {}
    for name in names:
        if rng.random() < 0.5:
            kind = _cell(rng)
            data[name] = [kind if rng.random() < 0.8 else _cell(rng) for _ in range(n_rows)]
        else:
            data[name] = [_cell(rng) for _ in range(n_rows)]
    return pd.DataFrame(data)


def _encode(df: pd.DataFrame, fmt: str, rng: np.random.Generator) -> bytes:
    if fmt == ".parquet":
        buf = io.BytesIO()
        df.to_parquet(buf)  # may refuse mixed columns: the caller falls back to CSV
        return buf.getvalue()
    if fmt == ".jsonl":
        rows = df.to_dict(orient="records")
        text = "\n".join(json.dumps(r, default=lambda v: v.decode("latin-1") if isinstance(v, bytes) else str(v)) for r in rows)
        return text.encode()
    sep = "\t" if fmt == ".tsv" else ","
    text = df.to_csv(index=False, sep=sep)
    raw = text.encode("utf-8")
    if rng.random() < 0.1:
        raw = "\ufeff".encode() + raw  # a BOM
    if rng.random() < 0.1:
        raw = text.encode("utf-16")
    return raw


def _corrupt(raw: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(raw)
    for _ in range(int(rng.integers(1, 6))):
        if not b:
            break
        op, i = rng.random(), int(rng.integers(len(b)))
        if op < 0.4:
            b[i] = int(rng.integers(256))
        elif op < 0.7:
            b.insert(i, int(rng.integers(256)))
        else:
            del b[i : i + int(rng.integers(1, 20))]
    return bytes(b)


def inputs(n: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """``n`` hostile uploads, the same ones for the same seed."""
    rng = np.random.default_rng(seed)
    for k in range(n):
        fmt = FORMATS[int(rng.integers(len(FORMATS)))]
        df = _table(rng)
        try:
            raw = _encode(df, fmt, rng)
        except Exception:  # pyarrow refuses some mixed columns: send them as CSV instead
            fmt, raw = ".csv", _encode(df, ".csv", rng)
        if rng.random() < 0.25:
            raw = _corrupt(raw, rng)
        yield f"upload-{k}{fmt}", raw
