"""Word vectors for token classification from the frozen text encoder (MiniLM), cached on disk.

A word's vector is the encoder's last hidden state at the word's **first sub-token** (the usual
choice for tagging with a word-piece encoder: the first piece sees the whole word through
attention, and one vector per word keeps rows aligned with tags). float32, 384-d for MiniLM,
not normalised.

    emb = word_embeddings(tokens_list)          # WordEmbeddings; cached
    emb.vectors                                 # (n_words_total, d) float32
    emb.offsets                                 # (n_sentences + 1,) int64: sentence i is rows offsets[i]:offsets[i + 1]

How a sentence becomes encoder input:

- its words are tokenised with ``is_split_into_words=True`` (a word's pieces never depend on its
  neighbours, so each sentence is tokenised once and windows are cut from its pieces); a word
  that tokenises to nothing (an empty string, a lone zero-width character) is read as the
  tokenizer's unknown token, so every word gets a vector;
- **windows**: a sentence whose pieces do not fit ``MAX_LENGTH`` (128, [CLS] and [SEP] included)
  is not truncated. It is cut at word boundaries into windows of at most 128; every window after
  the first starts up to ``CONTEXT`` (32) pieces before its first new word, so that word still
  has left context, and a word takes its vector from the window where it is new (never from the
  repeated context). ``WordEmbeddings.windows`` says how many windows each sentence took. A single
  word longer than a window keeps its first pieces (all its vector needs);
- each distinct sentence is embedded once; windows are batched longest first (32 a batch), each
  batch padded to its own longest window.

Engines: on the CPU the encoder exported to ONNX Runtime (``core.embed.onnx_encoder``: the same
graph, its last hidden state is its output, checked against torch before first use) when it is
available, else torch (``core.hardware.limit_torch_threads``); ``engine="torch"`` / ``"onnx"``
chooses. Both give the same vectors (cosine ≥ 0.9999997 on CoNLL-2003 sentences); ONNX Runtime
was 1.1× torch's speed on a quiet 2-core machine and 3-4× under load (``benchmarks/RESULTS.md``,
*Token label errors (NER)*).

Cache: ``GAPSCOPE_HOME/cache/features/words-<key>.npy`` (``core.embed.cache``: atomic write,
read back as a read-only memory map), with ``words-<key>.windows.npy`` beside it. The key is a
sha256 over ``WORDS_VERSION``, the encoder's identity (the pinned sha256 of the packaged weights,
or of a user folder's files), the preprocessing, and every sentence's tokens in order, so the
second diagnosis of the same sentences reads the file and loads neither tokenizer nor model
(tags are not in the key: a relabelled version hits the same file).

Importing this module does not import torch.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.embed import cache as feature_cache

WORDS_VERSION = 1  # bump when anything that changes the numbers changes
MAX_LENGTH = 128  # pieces per window, [CLS] and [SEP] included
CONTEXT = 32  # pieces of left context a continuation window repeats before its first new word
BATCH_SIZE = 32  # windows per forward pass on the CPU
BACKBONES = ("minilm",)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class WordEmbeddings:
    """One vector per word of every sentence."""

    vectors: np.ndarray  # (n_words, d) float32
    offsets: np.ndarray  # (n_sentences + 1,) int64
    windows: np.ndarray  # (n_sentences,) int32: windows the sentence was embedded in (1: it fit)

    @property
    def n_sentences(self) -> int:
        return len(self.offsets) - 1

    def sentence(self, i: int) -> np.ndarray:
        """(words of sentence i, d)."""
        return self.vectors[self.offsets[i] : self.offsets[i + 1]]


def sentence_offsets(tokens_list: Sequence[Sequence[str]]) -> np.ndarray:
    """(n + 1,) int64: where each sentence's words start in the flat word rows."""
    lengths = np.fromiter((len(t) for t in tokens_list), dtype=np.int64, count=len(tokens_list))
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


# --------------------------------------------------------------------------- public API


def word_embeddings(
    tokens_list: Sequence[Sequence[str]],
    *,
    backbone: str = "minilm",
    device: str = "auto",
    engine: str = "auto",
    batch_size: int | None = None,
    progress: Progress | None = None,
    cache: bool = True,
    timing: dict[str, Any] | None = None,
) -> WordEmbeddings:
    """Word vectors of every sentence (see the module's docstring), cached by content.

    Parameters
    ----------
    tokens_list : sequence of sequences of str
        The sentences' words.
    backbone : str, default "minilm"
        ``"minilm"`` (the packaged all-MiniLM-L6-v2) or a local transformers encoder folder.
    device : str, default "auto"
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    engine : {"auto", "onnx", "torch"}
        On the CPU ``"auto"`` runs ONNX Runtime when the export is available and faithful, else torch.
    batch_size : int, optional
        Windows per forward pass; default 32 on the CPU, 256 on a GPU.
    progress : callable, optional
        ``progress(done, total)`` in sentences, after every batch (and once on a cache hit).
    cache : bool, default True
        Read and write ``GAPSCOPE_HOME/cache/features``. A cache hit's vectors are a read-only
        memory map.
    timing : dict, optional
        Receives ``load_s``, ``tokenise_s``, ``model_s``, ``sentences`` (distinct), ``windows``,
        ``pieces``, ``engine`` and ``cached`` (True on a hit).

    Returns
    -------
    WordEmbeddings
    """
    sentences = [[str(w) for w in s] for s in tokens_list]
    offsets = sentence_offsets(sentences)
    name = _resolve(backbone)
    path = feature_cache.cache_dir() / f"words-{cache_key(sentences, backbone=name)}.npy" if cache else None
    if path is not None:
        hit = _load(path, int(offsets[-1]), len(sentences))
        if hit is not None:
            if progress is not None:
                progress(len(sentences), len(sentences))
            if timing is not None:
                timing.update(cached=True)
            return WordEmbeddings(hit[0], offsets, hit[1])
    vectors, windows = _embed(sentences, name, device, engine, batch_size, progress, timing)
    if path is not None:
        try:  # a cache: a full disk costs the next look its speed, never this result
            feature_cache.save(path.with_suffix(".windows.npy"), windows[:, None].astype(np.float32))
            feature_cache.save(path, vectors)
        except OSError as err:
            print(f"gapscope: word embeddings not cached ({err})", file=sys.stderr)
    if timing is not None:
        timing.update(cached=False)
    return WordEmbeddings(vectors, offsets, windows)


def is_cached(tokens_list: Sequence[Sequence[str]], *, backbone: str = "minilm") -> bool:
    """True when :func:`word_embeddings` would read these sentences' vectors from the cache."""
    sentences = [[str(w) for w in s] for s in tokens_list]
    key = cache_key(sentences, backbone=_resolve(backbone))
    return (feature_cache.cache_dir() / f"words-{key}.npy").exists()


def cache_key(tokens_list: Sequence[Sequence[str]], *, backbone: str = "minilm") -> str:
    """sha256 (hex) naming the vectors of ``tokens_list``: version, encoder, preprocessing, tokens."""
    from core.embed.embeddings import _backbone_id

    h = hashlib.sha256()
    h.update(f"gapscope-words-v{WORDS_VERSION}\n".encode())
    h.update(_backbone_id(_resolve(backbone)).encode() + b"\n")
    prep = {"max_length": MAX_LENGTH, "context": CONTEXT, "piece": "first", "layer": "last", "empty_word": "unk"}
    h.update(json.dumps(prep, sort_keys=True).encode() + b"\n")
    h.update(f"n={len(tokens_list)}\n".encode())
    for sent in tokens_list:
        h.update("\x1f".join(sent).encode("utf-8", "surrogatepass") + b"\x1e")
    return h.hexdigest()


def _resolve(backbone: str) -> str:
    if backbone in ("auto", *BACKBONES):
        return BACKBONES[0]
    if backbone.startswith("/") and Path(backbone).is_dir():  # resolved already
        return backbone
    path = Path(backbone).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return str(path.resolve())
    raise ValueError(
        f"word-embedding backbone {backbone!r} is neither 'minilm' nor a local transformers encoder folder (with config.json)."
    )


def _load(path: Path, n_words: int, n_sentences: int) -> tuple[np.ndarray, np.ndarray] | None:
    windows = feature_cache.load(path.with_suffix(".windows.npy"), n_sentences)
    vectors = feature_cache.load(path, n_words)
    if windows is None or vectors is None:
        return None
    return vectors, np.asarray(windows[:, 0], dtype=np.int32)


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class _Segment:
    """One encoder input: pieces without [CLS]/[SEP]; its new words' rows and piece positions."""

    ids: np.ndarray  # int64 pieces
    rows: np.ndarray  # int64 word rows (in the distinct sentences' flat rows) that take vectors here
    positions: np.ndarray  # int64 their first piece's index in ``ids``


def _windows(ids: np.ndarray, starts: np.ndarray, first_row: int, budget: int, context: int) -> list[_Segment]:
    """Cut one sentence's pieces into windows of at most ``budget`` pieces at word boundaries.

    ``starts`` (n_words + 1,): each word's first piece, then the number of pieces. The first
    window starts at piece 0; every later one at the first word boundary at most ``context``
    pieces before its first new word. A window's new words are those whose every piece fits
    (at least one word: a word longer than the window keeps its first pieces).
    """
    n_words = len(starts) - 1
    if n_words == 0:
        return []
    if starts[-1] <= budget:
        return [_Segment(ids, first_row + np.arange(n_words, dtype=np.int64), starts[:-1].astype(np.int64))]
    out = []
    w = 0
    while w < n_words:
        own = int(starts[w])
        s = own if w == 0 else int(starts[np.searchsorted(starts, own - context, side="left")])
        limit = s + budget
        q = int(np.searchsorted(starts, limit, side="right")) - 1  # words w..q-1 end by the limit
        q = max(q, w + 1)
        end = min(int(starts[q]), limit)
        out.append(_Segment(ids[s:end], first_row + np.arange(w, q, dtype=np.int64), (starts[w:q] - s).astype(np.int64)))
        w = q
    return out


def _tokenise(sentences: list[list[str]], tokenizer: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pieces, word starts with the piece count appended) per sentence; empty words become [UNK]."""
    unk = tokenizer.unk_token or "[UNK]"
    out = [(np.zeros(0, np.int64), np.zeros(1, np.int64)) for _ in sentences]
    todo = [i for i, s in enumerate(sentences) if s]
    if not todo:
        return out
    enc = tokenizer([sentences[i] for i in todo], is_split_into_words=True, add_special_tokens=False, truncation=False,
                    return_attention_mask=False, return_token_type_ids=False)  # fmt: skip
    for k, i in enumerate(todo):
        sent = sentences[i]
        ids, word_ids = enc["input_ids"][k], enc.word_ids(k)
        if len({w for w in word_ids if w is not None}) < len(sent):  # a word with no pieces
            seen = set(word_ids)
            fixed = [w if j in seen else unk for j, w in enumerate(sent)]
            one = tokenizer([fixed], is_split_into_words=True, add_special_tokens=False, truncation=False)
            ids, word_ids = one["input_ids"][0], one.word_ids(0)
        wid = np.asarray(word_ids, dtype=np.int64)
        first = np.flatnonzero(np.r_[True, wid[1:] != wid[:-1]])
        out[i] = (np.asarray(ids, dtype=np.int64), np.r_[first, len(wid)].astype(np.int64))
    return out


# --------------------------------------------------------------------------- encoder


def _encoder(source: str, device: str, engine: str) -> tuple[Any, Callable[[dict[str, np.ndarray]], np.ndarray], int, str, str]:
    """(tokenizer, forward(feed) → last hidden state (b, t, d) float32, d, device kind, engine name)."""
    from core.embed.embeddings import _onnx_encoder
    from core.hardware import torch_device
    from core.models.text import load_encoder, load_tokenizer

    dev = torch_device(device)
    onnx = _onnx_encoder(source, "fp32", dev.type, engine)
    if onnx is not None:
        return load_tokenizer(source), onnx.hidden, onnx.dim, dev.type, "onnx"
    import torch

    from core.embed.embeddings import _on_device
    from core.hardware import autocast

    tokenizer, model = load_encoder(source)  # limits torch's threads to the usable cores
    model = _on_device(model, dev)

    def forward(feed: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode(), autocast(dev):
            inputs = {k: torch.from_numpy(v).to(dev) for k, v in feed.items()}
            return model(**inputs).last_hidden_state.float().cpu().numpy()

    return tokenizer, forward, int(model.config.hidden_size), dev.type, "torch"


def _feed(segments: list[_Segment], cls_id: int, sep_id: int, pad_id: int, token_types: bool) -> dict[str, np.ndarray]:
    width = max(len(s.ids) for s in segments) + 2
    ids = np.full((len(segments), width), pad_id, np.int64)
    mask = np.zeros((len(segments), width), np.int64)
    for b, s in enumerate(segments):
        n = len(s.ids)
        ids[b, 0], ids[b, 1 : n + 1], ids[b, n + 1] = cls_id, s.ids, sep_id
        mask[b, : n + 2] = 1
    feed = {"input_ids": ids, "attention_mask": mask}
    if token_types:  # one segment: all zeros
        feed["token_type_ids"] = np.zeros_like(ids)
    return feed


def _embed(
    sentences: list[list[str]],
    source: str,
    device: str,
    engine: str,
    batch_size: int | None,
    progress: Progress | None,
    timing: dict[str, Any] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors (n_words, d) float32, windows per sentence (n,) int32); no cache."""
    from core.models.text import text_source

    started = time.perf_counter()
    n = len(sentences)
    distinct: dict[tuple[str, ...], int] = {}
    back = np.fromiter((distinct.setdefault(tuple(s), len(distinct)) for s in sentences), dtype=np.int64, count=n)
    uniq = [list(s) for s in distinct]
    tokenizer, forward, dim, kind, engine_name = _encoder(text_source(source), device, engine)
    t_tok = time.perf_counter()
    pieces = _tokenise(uniq, tokenizer)
    d_off = sentence_offsets(uniq)
    segments, owner = [], []
    windows = np.zeros(len(uniq), np.int32)
    for u, (ids, starts) in enumerate(pieces):
        segs = _windows(ids, starts, int(d_off[u]), MAX_LENGTH - 2, CONTEXT)
        windows[u] = len(segs)
        segments += segs
        owner += [u] * len(segs)
    order = np.argsort(-np.fromiter((len(s.ids) for s in segments), dtype=np.int64, count=len(segments)), kind="stable")
    out = np.zeros((int(d_off[-1]), dim), np.float32)
    size = int(batch_size or (BATCH_SIZE if kind == "cpu" else 256))
    if size < 1:
        raise ValueError(f"batch_size must be a positive number of windows, got {size}")
    cls_id, sep_id = int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)
    pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0
    token_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    t_model = time.perf_counter()
    left = np.bincount(np.asarray(owner, dtype=np.int64), minlength=len(uniq)) if segments else np.zeros(len(uniq), np.int64)
    done_distinct = 0
    for start in range(0, len(segments), size):
        batch = [segments[i] for i in order[start : start + size]]
        hidden = forward(_feed(batch, cls_id, sep_id, pad_id, token_types))
        for b, s in enumerate(batch):
            out[s.rows] = hidden[b, s.positions + 1]
        owners = np.asarray([owner[i] for i in order[start : start + size]], dtype=np.int64)
        np.subtract.at(left, owners, 1)
        done_distinct += int((left[np.unique(owners)] == 0).sum())
        if progress is not None:
            progress(n if done_distinct == len(uniq) else min(n, round(done_distinct * n / max(len(uniq), 1))), n)
    if progress is not None and not segments:
        progress(n, n)
    if timing is not None:
        timing.update(load_s=t_tok - started, tokenise_s=t_model - t_tok, model_s=time.perf_counter() - t_model, sentences=len(uniq),
                      windows=len(segments), pieces=int(sum(len(s.ids) + 2 for s in segments)), engine=engine_name, device=kind)  # fmt: skip
    rows = np.concatenate([np.arange(d_off[u], d_off[u + 1]) for u in back]) if n and d_off[-1] else np.zeros(0, np.int64)
    return out[rows], windows[back]
