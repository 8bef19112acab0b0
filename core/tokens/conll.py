"""Token files → a token ``Dataset``: CoNLL-style text (one token per line) and JSON Lines.

Pure: every function returns a ``LoadResult`` or raises ``DataError`` naming the line and what to
change; nothing is written.

**CoNLL-style text.** One token per line: the token first, the tag last, optional columns between
(part of speech, chunk: read past), separated by whitespace or tabs; a blank line (or one of
whitespace only, such as a lone tab) between sentences; ``-DOCSTART-`` lines end a document (its
number, counted across the files read, is kept as text in the meta column ``doc``: "1", "2", …, so
``core.data.slices`` makes it a slice only when there are few documents); lines starting with ``#`` that are not token lines are
comments. Text is UTF-8 (with or without BOM) or UTF-16 with BOM, else read as Windows-1252 /
Latin-1 with a warning (``core.data.tables.decode_text``).

**JSON Lines.** One object per line, ``{"tokens": [...], "tags": [...]}`` (``"ner_tags"`` is read
as ``"tags"`` when it holds tag names); an optional ``"split"`` (train / val / test); other keys with
plain values and at most ``MAX_SLICE_VALUES`` distinct values become meta columns (slices).

**Either.** Tags in any scheme become IOB2 (``core.tokens.schemes.to_iob2``: repairs are counted
and said). A sentence longer than ``MAX_TOKENS`` tokens is cut into pieces (between entities where
possible) with a warning: such a "sentence" is nearly always a file missing its blank lines, and a
model reads at most 512 pieces of one. Without split information a seeded 80 / 10 / 10 split
stratified by each sentence's rarest entity type is made, and said.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.data.dataset import RESERVED_COLUMNS, LoadResult
from core.data.labels import MAX_CLASSES
from core.data.splits import SPLIT_ALIASES, scoring_problem, stratified_split
from core.data.tables import SPLIT_SEED, decode_text
from core.errors import DataError
from core.tokens.data import token_dataset
from core.tokens.schemes import TAG_RULE, bad_tag_message, is_tag, to_iob2
from core.tokens.spans import entity_types, sentence_labels

CONLL_TYPES = ("conll", "iob", "bio")  # always read as CoNLL; .txt and .tsv when they look like it
JSONL_TYPES = ("jsonl", "ndjson")
MAX_TOKENS = 512  # longest sentence kept whole; longer ones are cut (a model reads at most 512 pieces)
MAX_SLICE_VALUES = 50  # a JSONL key with more distinct values is not kept as a slice
MAX_META_KEYS = 50
SNIFF_BYTES = 64 * 1024  # how much of a .txt / .tsv upload ``looks_like_conll`` reads
COLUMN_SAMPLE = 1000  # token lines that set a file's column count (the most common count among them)
DOCSTART = "-DOCSTART-"
EXAMPLE = "'EU B-ORG'"


@dataclass
class Sentences:
    """Sentences as read, tags in the file's own scheme. ``lines``: each sentence's first line (1-based);
    ``docs``: its document number (``-DOCSTART-`` lines seen before it)."""

    tokens: list[tuple[str, ...]] = field(default_factory=list)
    tags: list[tuple[str, ...]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    docs: list[int] = field(default_factory=list)
    n_docs: int = 0
    columns: int = 0
    warnings: list[str] = field(default_factory=list)


def _decode(data: bytes, filename: str) -> tuple[str, list[str]]:
    if not data.strip():
        raise DataError(f"'{filename}' is empty. Upload one token per line with its tag last ({EXAMPLE}), a blank line between sentences.")
    try:
        text, warnings = decode_text(data)
    except UnicodeDecodeError as err:  # UTF-16 with a BOM but broken after it
        raise DataError(f"'{filename}' starts like UTF-16 text but is not ({err.reason}). Save it as UTF-8 and upload it again.") from err
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataError(f"'{filename}' line {line:,} holds a NUL byte: the file is binary, not text. Upload the text file itself (UTF-8).")
    return text.replace("\r\n", "\n").replace("\r", "\n"), warnings


def _fields(line: str) -> list[str]:
    """A line's columns: split at tabs when it has one (a token may then hold spaces), else at whitespace."""
    if "\t" in line:
        fields = [f.strip() for f in line.split("\t")]
        while fields and not fields[-1]:
            fields.pop()
        return fields
    return line.split()


def _is_comment(line: str, fields: list[str], columns: int) -> bool:
    """A ``#`` line that is not a token line of the file's shape ('#' or '#tag' as a token stays one)."""
    return line.lstrip().startswith("#") and not (len(fields) == columns and columns >= 2 and is_tag(fields[-1]))


def _column_count(lines: list[str]) -> tuple[int, int]:
    """(the most common column count among the first token lines, the first token line's number); (0, 0) if none."""
    counts: Counter[int] = Counter()
    first = 0
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = _fields(line)
        if fields[0] == DOCSTART:
            continue
        first = first or n
        counts[len(fields)] += 1
        if counts.total() >= COLUMN_SAMPLE:
            break
    if not counts:
        return 0, 0
    return max(counts, key=lambda k: (counts[k], k)), first


def _check_line(fields: list[str], n: int, columns: int, first: bool, filename: str) -> None:
    where = f"'{filename}' line {n:,}"
    table = (
        f" A token file has one token per line with its tag last ({EXAMPLE}) and a blank line between sentences; "
        "a table with a header row belongs in a .csv."
    )
    if len(fields) == 1:
        raise DataError(
            f"{where} has a token ({fields[0][:40]!r}) but no tag. Put the tag last on the line ({EXAMPLE}), "
            "separated by a space or a tab, or leave the line blank between sentences." + (table if first else "")
        )
    if not is_tag(fields[-1]):
        raise DataError(bad_tag_message(fields[-1], where) + (table if first else " Check that the tag is the last column."))
    if len(fields) != columns:
        raise DataError(
            f"{where} has {len(fields)} columns but the file's token lines have {columns}: every token line needs the same "
            "columns, the token first and its tag last. A token with a space in it needs tab-separated columns."
        )
    if not fields[0]:
        raise DataError(f"{where} has an empty token (the first column). Give the token, or delete the line.")


def parse_conll(text: str, filename: str, *, first_doc: int = 0) -> Sentences:
    """Sentences of CoNLL-style ``text`` (decoded, ``\\n`` line ends); tags as the file gives them.

    ``first_doc`` numbers the documents of a file read after others. Raises ``DataError`` at the
    first line that is not a token line of the file's shape, naming the line."""
    lines = text.split("\n")
    columns, first_line = _column_count(lines)
    if columns == 0:
        raise DataError(
            f"'{filename}' has no token lines. Upload one token per line with its tag last ({EXAMPLE}), a blank line between sentences."
        )
    if columns == 1:
        raise DataError(
            f"'{filename}' has one column per line (from line {first_line:,}), so it holds no tags. Put each token's tag "
            f"last on its line ({EXAMPLE}), separated by a space or a tab."
        )
    out = Sentences(columns=columns, n_docs=first_doc)
    tokens: list[str] = []
    tags: list[str] = []
    start = 0

    def close() -> None:
        if tokens:
            out.tokens.append(tuple(tokens))
            out.tags.append(tuple(tags))
            out.lines.append(start)
            out.docs.append(out.n_docs)
            tokens.clear()
            tags.clear()

    for n, line in enumerate(lines, 1):
        if not line.strip():
            close()
            continue
        fields = _fields(line)
        if fields[0] == DOCSTART:
            close()
            out.n_docs += 1
            continue
        if _is_comment(line, fields, columns):
            continue
        _check_line(fields, n, columns, n == first_line, filename)
        start = start if tokens else n
        tokens.append(fields[0])
        tags.append(fields[-1])
    close()
    if not out.tokens:
        raise DataError(f"'{filename}' has no sentences, only document markers or comments. Add token lines ({EXAMPLE}).")
    if columns > 2:
        out.warnings.append(
            f"Columns 2–{columns - 1} of {columns} (such as part-of-speech or chunk tags) were not used: "
            "Gapscope reads the token (first column) and its entity tag (last)."
        )
    return out


def looks_like_conll(data: bytes) -> bool:
    """Whether a .txt / .tsv upload is a token file rather than a table: most of its first non-blank
    lines have two or more columns whose last is a tag, with blank lines between sentences (or all
    of them do)."""
    head = data[:SNIFF_BYTES]
    text = head.decode("utf-16", errors="replace") if head[:2] in (b"\xff\xfe", b"\xfe\xff") else head.decode("utf-8", errors="replace")
    if "\x00" in text:
        return False
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(data) > SNIFF_BYTES:
        lines = lines[:-1]  # the last line read may be cut short
    seen = tagged = 0
    blank_between = after_blank = False
    for line in lines[:2000]:
        if not line.strip():
            after_blank = seen > 0
            continue
        fields = _fields(line)
        ok = len(fields) >= 2 and is_tag(fields[-1])
        if fields[0] == DOCSTART or (line.lstrip().startswith("#") and not ok):
            continue
        seen += 1
        tagged += ok
        blank_between |= after_blank
        after_blank = False
    return seen >= 2 and tagged >= 0.8 * seen and (blank_between or tagged == seen)


def looks_like_token_jsonl(data: bytes) -> bool:
    """Whether a JSON Lines upload holds sentences: its first object has a "tokens" key."""
    head = data[:SNIFF_BYTES].decode("utf-8", errors="replace").lstrip("\ufeff")
    for line in head.split("\n")[:50]:
        if line.strip():
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                return False
            return isinstance(obj, dict) and "tokens" in obj
    return False


def _cut_points(tags: Sequence[str], limit: int) -> list[tuple[int, int]]:
    """Pieces (start, end) of at most ``limit`` tokens, each cut before a token that opens nothing
    new (O or B-) where one is in reach, else at the limit."""
    pieces, start, n = [], 0, len(tags)
    while n - start > limit:
        end = start + limit
        while end > start + 1 and tags[end].startswith("I-"):
            end -= 1
        if tags[end].startswith("I-"):
            end = start + limit  # one entity longer than the limit: cut inside it
        pieces.append((start, end))
        start = end
    pieces.append((start, n))
    return pieces


@dataclass
class _Cut:
    tokens: list[tuple[str, ...]]
    tags: list[tuple[str, ...]]
    rows: list[int]  # the sentence each piece came from
    words: list[str]


def _cut_long(tokens: Sequence[tuple[str, ...]], tags: Sequence[tuple[str, ...]], limit: int = MAX_TOKENS) -> _Cut:
    out = _Cut([], [], [], [])
    long_ones, pieces, longest = 0, 0, 0
    for i, (tok, tag) in enumerate(zip(tokens, tags)):
        if len(tok) <= limit:
            out.tokens.append(tok)
            out.tags.append(tag)
            out.rows.append(i)
            continue
        long_ones += 1
        longest = max(longest, len(tok))
        for a, b in _cut_points(tag, limit):
            piece = list(tag[a:b])
            if piece[0].startswith("I-"):
                piece[0] = "B-" + piece[0][2:]  # a piece cut inside an entity opens it again
            out.tokens.append(tok[a:b])
            out.tags.append(tuple(piece))
            out.rows.append(i)
            pieces += 1
    if long_ones:
        out.words.append(
            f"{long_ones:,} sentence(s) had more than {limit} tokens (the longest {longest:,}) and were cut into {pieces:,} pieces "
            f"of at most {limit}, between entities where possible. Check that the file has a blank line between sentences."
        )
    return out


def _made_split(tags: Sequence[Sequence[str]]) -> tuple[np.ndarray, str]:
    labels, _ = sentence_labels(tags)
    split = stratified_split(labels, seed=SPLIT_SEED)
    n = np.bincount(split, minlength=3)
    words = (
        f"The file gives no split: sentences were split 80 / 10 / 10 % into train / val / test ({n[0]:,} / {n[1]:,} / {n[2]:,}), "
        f"seeded ({SPLIT_SEED}) and stratified by each sentence's rarest entity type; a type that is the rarest of fewer "
        "than 10 sentences keeps them all in train."
    )
    return split, words


@dataclass
class _Read:
    """What a loader read, before the shared finish: tags in the file's scheme, split codes or None."""

    tokens: list[tuple[str, ...]]
    tags: list[tuple[str, ...]]
    where: Any  # (sentence, token) → "'f' line 12"
    split: np.ndarray | None = None
    meta: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _finish(read: _Read, name: str) -> LoadResult:
    """IOB2 tags, long sentences cut, a split made when none was given, labels: the LoadResult."""
    warnings = list(read.warnings)
    converted = to_iob2(read.tags, where=read.where)
    warnings += converted.report.words()
    cut = _cut_long(read.tokens, converted.tags)
    warnings += cut.words
    types = entity_types(cut.tags)
    if len(types) + 1 > MAX_CLASSES:
        raise DataError(
            f"The file has {len(types):,} entity types; Gapscope reads at most {MAX_CLASSES - 1:,}. "
            "Check that the tag is the last column, and that types are names (PER, LOC), not values."
        )
    if not types:
        warnings.append("No sentence has an entity: every tag is O. Entity metrics need B- and I- tags.")
    rows = np.asarray(cut.rows, dtype=np.int64)
    if read.split is not None:
        split = read.split[rows]
    else:
        split, words = _made_split(cut.tags)
        warnings.append(words)
    problem = scoring_problem(split)
    if problem:
        warnings.append(problem)
    meta = None if read.meta is None else read.meta.iloc[rows].reset_index(drop=True)
    ds = token_dataset(name, cut.tokens, cut.tags, split, meta)
    return LoadResult(ds, warnings, list(read.skipped), tag_scheme=converted.report)


def _conll_read(files: Sequence[tuple[str, bytes, int | None]]) -> _Read:
    tokens: list[tuple[str, ...]] = []
    tags: list[tuple[str, ...]] = []
    lines: list[tuple[str, int]] = []
    docs: list[int] = []
    splits: list[int | None] = []
    warnings: list[str] = []
    n_docs = 0
    for filename, data, code in files:
        text, decoded = _decode(data, filename)
        got = parse_conll(text, filename, first_doc=n_docs)
        prefix = f"'{filename}': " if len(files) > 1 else ""
        warnings += [prefix + w for w in decoded] + got.warnings
        tokens += got.tokens
        tags += got.tags
        lines += [(filename, n) for n in got.lines]
        docs += got.docs
        splits += [code] * len(got.tokens)
        n_docs = got.n_docs
    where = lambda i, j: f"'{lines[i][0]}' line {lines[i][1] + j:,}"  # tags were checked line by line: rarely used
    # the number as text: a slice when a file has few documents, never quartiles of document numbers
    meta = pd.DataFrame({"doc": pd.Series(np.asarray(docs).astype(str), dtype="string")}) if n_docs else None
    split = None if any(s is None for s in splits) else np.asarray(splits, dtype=np.int8)
    return _Read(tokens, tags, where, split, meta, list(dict.fromkeys(warnings)))  # a note every file gives, once


def load_conll(data: bytes, filename: str, *, name: str | None = None) -> LoadResult:
    """A token dataset from one CoNLL-style file (split made, seeded)."""
    return _finish(_conll_read([(filename, data, None)]), name or Path(filename).stem or "tokens")


def load_conll_files(files: Sequence[tuple[str, bytes, str]], *, name: str) -> LoadResult:
    """A token dataset from several CoNLL-style files, each a split: ``[(filename, bytes, "train"), …]``
    (split names as ``core.data.splits.SPLIT_ALIASES`` reads them). Documents are numbered across files."""
    coded: list[tuple[str, bytes, int | None]] = []
    for filename, data, split_name in files:
        if split_name.strip().lower() not in SPLIT_ALIASES:
            raise DataError(f"'{filename}': split {split_name!r} is not train, val or test.")
        coded.append((filename, data, SPLIT_ALIASES[split_name.strip().lower()]))
    return _finish(_conll_read(coded), name)


# ---------------------------------------------------------------------------------------------- JSONL
JSONL_EXAMPLE = '{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}'


def _json_object(line: str, n: int, filename: str) -> dict:
    where = f"'{filename}' line {n:,}"
    try:
        obj = json.loads(line)
    except RecursionError as err:
        raise DataError(f"{where} nests JSON too deeply to read. Each line must be one object like {JSONL_EXAMPLE}.") from err
    except ValueError as err:
        detail = f"{err.msg} at column {err.colno}" if isinstance(err, json.JSONDecodeError) else str(err)[:80]
        raise DataError(f"{where} is not valid JSON ({detail}). Each line must be one object like {JSONL_EXAMPLE}.") from err
    if not isinstance(obj, dict):
        raise DataError(f"{where} is a JSON {type(obj).__name__}, not an object. Each line must be one object like {JSONL_EXAMPLE}.")
    return obj


def _string_list(obj: dict, key: str, where: str) -> list[str]:
    values = obj[key]
    if not isinstance(values, list):
        raise DataError(f"{where}: '{key}' is a {type(values).__name__}, not a list. Give a list of strings, as in {JSONL_EXAMPLE}.")
    for j, v in enumerate(values):
        if key != "tokens" and isinstance(v, (int, float)) and not isinstance(v, bool):
            raise DataError(
                f"{where}: '{key}' holds numbers ({v!r} at position {j + 1}); the file does not say which tag each number is. "
                'Give the tag names ("B-PER", "O") in "tags".'
            )
        if not isinstance(v, str):
            what = "token" if key == "tokens" else "tag"
            if what == "tag":
                raise DataError(bad_tag_message(v, f"{where}, tag {j + 1}"))
            raise DataError(f"{where}: token {j + 1} is {str(v)[:40]!r} ({type(v).__name__}), not a string. Give every token as a string.")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as err:
            raise DataError(
                f"{where}: {key[:-1]} {j + 1} holds a lone surrogate ({err.reason}); it is not text. Fix the escape (\\ud…)."
            ) from err
    return values


def _jsonl_sentence(obj: dict, where: str) -> tuple[list[str], list[str]]:
    if "tokens" not in obj:
        raise DataError(f"{where} has no 'tokens' key. Each line must be an object like {JSONL_EXAMPLE}.")
    key = "tags" if "tags" in obj else "ner_tags" if "ner_tags" in obj else None
    if key is None:
        raise DataError(f"{where} has 'tokens' but no 'tags' (or 'ner_tags'). Give one tag per token, as in {JSONL_EXAMPLE}.")
    tokens, tags = _string_list(obj, "tokens", where), _string_list(obj, key, where)
    if len(tokens) != len(tags):
        raise DataError(f"{where} has {len(tokens)} tokens but {len(tags)} tags. Give exactly one tag per token.")
    for j, (token, tag) in enumerate(zip(tokens, tags)):
        if not token.strip():
            raise DataError(f"{where}: token {j + 1} is empty. Give every token some text, or leave it out with its tag.")
        if not is_tag(tag):
            raise DataError(bad_tag_message(tag, f"{where}, tag {j + 1}"))
    return tokens, tags


def _jsonl_split(obj: dict, where: str) -> int | None:
    if "split" not in obj:
        return None
    value = obj["split"]
    code = SPLIT_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
    if code is None:
        raise DataError(
            f"{where}: split {str(value)[:40]!r} is not train, val or test. Use one of those, or leave 'split' out of every line."
        )
    return code


@dataclass
class _Extras:
    """Plain values of other keys, by key; keys whose values are not plain are dropped."""

    values: dict[str, list[Any]] = field(default_factory=dict)
    nested: set[str] = field(default_factory=set)
    too_many: set[str] = field(default_factory=set)

    def add(self, obj: dict, row: int) -> None:
        for k, v in obj.items():
            if k in ("tokens", "tags", "ner_tags", "split") or k in self.nested:
                continue
            if k not in self.values:
                if len(self.values) >= MAX_META_KEYS:
                    self.too_many.add(k)
                    continue
                self.values[k] = [None] * row
            if isinstance(v, (dict, list)):
                self.nested.add(k)
                del self.values[k]
                continue
            self.values[k].append(v)
        for col in self.values.values():
            col.extend([None] * (row + 1 - len(col)))

    def frame(self, n: int, warnings: list[str]) -> pd.DataFrame | None:
        cols: dict[str, pd.Series] = {}
        many = []
        for k, vals in self.values.items():
            text = pd.Series([None if v is None else str(v) for v in vals], dtype="string")
            if text.nunique() > MAX_SLICE_VALUES:
                many.append(k)
                continue
            name = f"{k} (column)" if k in RESERVED_COLUMNS else k
            cols[name] = text
        dropped = sorted(self.nested) + many + sorted(self.too_many)
        if dropped:
            warnings.append(
                f"Key(s) {', '.join(map(repr, dropped[:5]))}{'…' if len(dropped) > 5 else ''} were not kept: a slice needs plain "
                f"values (not lists or objects) with at most {MAX_SLICE_VALUES} distinct ones."
            )
        return pd.DataFrame(cols, index=pd.RangeIndex(n)) if cols else None


def load_jsonl(data: bytes, filename: str, *, name: str | None = None) -> LoadResult:
    """A token dataset from JSON Lines: ``{"tokens": [...], "tags": [...], "split": "train"}`` per line."""
    text, warnings = _decode(data, filename)
    read = _Read([], [], None, warnings=warnings)
    lines: list[int] = []
    splits: list[int | None] = []
    extras = _Extras()
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"'{filename}' line {n:,}"
        obj = _json_object(line, n, filename)
        tokens, tags = _jsonl_sentence(obj, where)
        code = _jsonl_split(obj, where)
        if not tokens:
            read.skipped.append((f"line {n:,}", "an empty sentence (no tokens)"))
            continue
        if splits and (code is None) != (splits[0] is None):
            has, lacks = (lines[0], n) if code is None else (n, lines[0])
            raise DataError(
                f"'{filename}' line {lacks:,} has no 'split' but line {has:,} has one. Give every line a split (train, val or test), or none."
            )
        extras.add(obj, len(read.tokens))
        read.tokens.append(tuple(tokens))
        read.tags.append(tuple(tags))
        lines.append(n)
        splits.append(code)
    if read.skipped:
        read.warnings.append(f"Skipped {len(read.skipped):,} empty sentence(s) (lines with no tokens).")
    if not read.tokens:
        raise DataError(f"'{filename}' has no sentences. Each line must be one object like {JSONL_EXAMPLE}.")
    read.where = lambda i, j: f"'{filename}' line {lines[i]:,}, tag {j + 1}"
    if splits[0] is not None:
        read.split = _given_split(np.asarray(splits, dtype=np.int8), read.tags, read.warnings)
    read.meta = extras.frame(len(read.tokens), read.warnings)
    return _finish(read, name or Path(filename).stem or "tokens")


def _given_split(split: np.ndarray, tags: Sequence[Sequence[str]], warnings: list[str]) -> np.ndarray:
    """The split the lines give; with no val lines, 10% of train (per sentence label) becomes val."""
    if not (split == 0).any():
        raise DataError("No line has split 'train'. Mark some sentences as train, or leave 'split' out and let Gapscope make one.")
    if (split == 1).any():
        return split
    labels, _ = sentence_labels(tags)
    carved = stratified_split(labels, val=0.1, test=0.0, seed=SPLIT_SEED, holdout_from=split == 0)
    split = np.where(split == 0, carved, split).astype(np.int8)
    warnings.append(f"No 'val' sentences were given; 10% of train (per sentence label) was set aside as val ({int((split == 1).sum()):,}).")
    return split


def load_tokens(data: bytes, filename: str, *, name: str | None = None) -> LoadResult:
    """A token upload: JSON Lines by its extension (.jsonl, .ndjson), else CoNLL-style text."""
    if Path(filename).suffix.lower().lstrip(".") in JSONL_TYPES:
        return load_jsonl(data, filename, name=name)
    return load_conll(data, filename, name=name)


__all__ = [
    "CONLL_TYPES",
    "JSONL_TYPES",
    "MAX_TOKENS",
    "TAG_RULE",
    "Sentences",
    "load_conll",
    "load_conll_files",
    "load_jsonl",
    "load_tokens",
    "looks_like_conll",
    "looks_like_token_jsonl",
    "parse_conll",
]
