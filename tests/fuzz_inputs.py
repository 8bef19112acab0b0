"""Seeded generators of hostile uploads, shared by the fuzz test and ``benchmarks/fuzz_uploads.py``.

``inputs``: each is ``(filename, bytes)``: small tables with clashing or odd column names (label and
Label, split and Split, blanks), cells of every awkward kind (blanks, numbers in a text column,
unknown split values, nested objects and lists, invalid UTF-8, very long or non-Latin text), in
CSV, TSV, JSON Lines and Parquet, plus byte-level corruptions of valid files.

``token_inputs``: token files for named entities, CoNLL-style (.conll .iob .bio .txt .tsv) and JSON
Lines: mostly well-formed sentences in IOB2, IOB1, IOBES or IO with lone I- tags, bad tags ("PER",
"X-PER", numbers), one-column and wrong-width lines, middle columns, -DOCSTART- and comment lines,
blank lines of spaces or a lone tab, CRLF and CR line ends, BOMs, Latin-1 and UTF-16 text, sentences
of thousands of tokens, huge lines, truncated files, binary garbage and empty files; JSON Lines with
mismatched lengths, numbers for tokens or tags, missing keys, bad JSON, lone surrogates, splits and
slice keys.
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


# ------------------------------------------------------------------------------------------ tokens
TOKENS = ["EU", "rejects", "German", "call", "Peter", "ça", "日本", "🙂", "#tag", "@user", "-", "O", "B-PER", "x" * 300, "1996"]
TYPES = ["PER", "LOC", "ORG", "geo-loc"]
BAD_TAGS = ["PER", "X-PER", "7", "B-", "b-per", "-PER", "I_PER", "O-", "B-PER X"]
TOKEN_NAMES = [".conll", ".iob", ".bio", ".txt", ".tsv"]
SCHEMES = ["IOB2", "IOB2", "IOB1", "IOBES", "IO", "mixed"]
BLANKS = ["", "", "", " ", "\t", "  \t "]


def _pick(rng: np.random.Generator, pool: list) -> object:
    return pool[int(rng.integers(len(pool)))]


def _render(kinds: list[str | None], scheme: str, rng: np.random.Generator) -> list[str]:
    """Tags of a sentence whose tokens belong to ``kinds`` (an entity type, or None), each run of one
    type split into entities at random, written in ``scheme`` ("mixed": IOB2 with lone I- tags)."""
    tags: list[str] = []
    for i, kind in enumerate(kinds):
        if kind is None:
            tags.append("O")
            continue
        opens = i == 0 or kinds[i - 1] != kind or rng.random() < 0.2
        closes = i + 1 == len(kinds) or kinds[i + 1] != kind
        if scheme == "IOB1":
            tags.append(f"B-{kind}" if opens and i > 0 and kinds[i - 1] == kind else f"I-{kind}")
        elif scheme == "IO":
            tags.append(f"I-{kind}")
        elif scheme == "IOBES":
            tags.append(f"{'S' if opens and closes else 'B' if opens else 'E' if closes else 'I'}-{kind}")
        else:
            tags.append(f"{'B' if opens and not (scheme == 'mixed' and rng.random() < 0.3) else 'I'}-{kind}")
    return tags


def _sentence(rng: np.random.Generator, scheme: str, hostile: bool) -> list[tuple[str, str]]:
    n = int(rng.integers(0, 12)) if rng.random() > 0.02 else int(rng.integers(500, 1500))
    kinds: list[str | None] = []
    while len(kinds) < n:
        kind = None if rng.random() < 0.6 else str(_pick(rng, TYPES))
        kinds += [kind] * int(rng.integers(1, 4))
    tags = _render(kinds[:n], scheme, rng)
    if hostile and tags and rng.random() < 0.3:
        tags[int(rng.integers(len(tags)))] = str(_pick(rng, BAD_TAGS))
    tokens = [str(_pick(rng, TOKENS)) if not (hostile and rng.random() < 0.05) else "a b" for _ in tags]
    return list(zip(tokens, tags))


def _conll_line(rng: np.random.Generator, token: str, tag: str, columns: int, sep: str, hostile: bool) -> str:
    if hostile and rng.random() < 0.05:
        columns = int(rng.integers(1, 6))  # a line of another width
    fields = [token, *(["NNP", "B-NP", "x"][: max(columns - 2, 0)])] + ([tag] if columns > 1 else [])
    return sep.join(fields)


def _conll_text(rng: np.random.Generator) -> str:
    scheme, hostile = str(_pick(rng, SCHEMES)), rng.random() < 0.3
    columns = int(_pick(rng, [2, 2, 2, 2, 4, 4, 3, 1]))
    sep = str(_pick(rng, [" ", "\t", "  ", " \t"]))
    lines: list[str] = []
    for _ in range(int(rng.integers(0, 9))):
        if rng.random() < 0.1:
            lines += ["-DOCSTART- -X- -X- O", str(_pick(rng, BLANKS))]
        if rng.random() < 0.05:
            lines.append("# sent_id = " + str(int(rng.integers(100))))
        lines += [_conll_line(rng, tok, tag, columns, sep, hostile) for tok, tag in _sentence(rng, scheme, hostile)]
        lines += [str(_pick(rng, BLANKS)) for _ in range(int(rng.integers(1, 3)))]
    if rng.random() < 0.02:
        lines.insert(int(rng.integers(len(lines) + 1)), "word " * 20_000 + "O")  # a huge line
    return str(_pick(rng, ["\n", "\n", "\r\n", "\r"])).join(lines)


def _token_object(rng: np.random.Generator, split: bool) -> object:
    sentence = _sentence(rng, str(_pick(rng, SCHEMES)), rng.random() < 0.1)
    obj: dict[str, object] = {"tokens": [t for t, _ in sentence], "tags" if rng.random() < 0.8 else "ner_tags": [g for _, g in sentence]}
    r = rng.random()
    if r < 0.03:
        obj["tokens"] = [*obj["tokens"], "extra"]  # one token too many
    elif r < 0.05:
        obj["tokens"] = [1, *obj["tokens"]][: len(sentence)]  # a number for a token
    elif r < 0.06:
        obj.pop("tokens")
    elif r < 0.07:
        obj["tags"] = [3] * len(sentence)
    elif r < 0.08:
        obj["tokens"] = "not a list"
    if split:
        obj["split"] = str(_pick(rng, ["train", "train", "train", "val", "test", "dev"] if rng.random() > 0.01 else ["holdout"]))
    if rng.random() < 0.3:
        obj["source"] = _pick(rng, ["news", "web", 3, None, True, [1, 2], {"k": "v"}])
    return obj


def _jsonl_text(rng: np.random.Generator) -> str:
    split = rng.random() < 0.5
    lines = []
    for _ in range(int(rng.integers(0, 12))):
        r = rng.random()
        if r < 0.02:
            lines.append('{"tokens": ["a", "b"], "tags": ["O", ')  # cut short
        elif r < 0.03:
            lines.append(str(_pick(rng, ["[1, 2]", '"text"', "null", '{"tokens": ["\\ud800"], "tags": ["O"]}', "[" * 5000])))
        else:
            lines.append(json.dumps(_token_object(rng, split), ensure_ascii=rng.random() < 0.5))
        if rng.random() < 0.05:
            lines.append("")
    return str(_pick(rng, ["\n", "\r\n"])).join(lines)


def _token_bytes(text: str, rng: np.random.Generator) -> bytes:
    r = rng.random()
    if r < 0.05:
        return text.encode("utf-16")
    if r < 0.1:
        return text.encode("latin-1", errors="replace")
    raw = text.encode("utf-8", errors="surrogatepass")
    return "\ufeff".encode() + raw if r < 0.2 else raw


def token_inputs(n: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """``n`` hostile token uploads (CoNLL-style and JSON Lines), the same ones for the same seed."""
    rng = np.random.default_rng(seed)
    for k in range(n):
        jsonl = rng.random() < 0.35
        suffix = str(_pick(rng, [".jsonl", ".ndjson"])) if jsonl else str(_pick(rng, TOKEN_NAMES))
        raw = _token_bytes(_jsonl_text(rng) if jsonl else _conll_text(rng), rng)
        r = rng.random()
        if r < 0.03:
            raw = b""
        elif r < 0.06:
            raw = rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8).tobytes()  # binary garbage
        elif r < 0.12 and raw:
            raw = raw[: int(rng.integers(len(raw)))]  # truncated
        elif r < 0.25:
            raw = _corrupt(raw, rng)
        yield f"tokens-{k}{suffix}", raw
