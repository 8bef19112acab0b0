"""A token tagger: a registry text encoder (MiniLM today) with a linear tag head on each word.

Words are tokenised once (``is_split_into_words``); a word's tag is read from its **first
sub-token**, the other sub-tokens are ignored (no loss, no prediction). The model returns the logits
of the batch's words only, flattened in (sentence, word) order, so the run's criterion seam
(``core.mitigate.criterion``) scores them like a batch of items: class weights, focal loss and
logit adjustment work on tag classes unchanged.

Each word also carries its **shape** (lower case, Capitalised, ALL CAPS, with a digit, punctuation,
other): a small learned embedding of it joins the word's vector before the head. The shape is what
an uncased encoder's vocabulary (MiniLM's is lower-cased) cannot see, and capitalisation is the
strongest single cue for a name in English.

A word whose first sub-token falls past ``max_length`` is *truncated*: it is not trained on and is
predicted "O" with probability 1 (``WordTokens.truncated`` counts them; the run's log says how many).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

IGNORE = -100  # a target the loss skips (a word of a type absent from the model's tags)
SHAPES = ("lower", "Capitalised", "ALL CAPS", "digit", "punctuation", "other")
SHAPE_DIM = 16  # the shape embedding's width


def word_shape(word: str) -> int:
    """The index in ``SHAPES`` of ``word``'s shape."""
    if any(c.isdigit() for c in word):
        return 3
    if not any(c.isalnum() for c in word):
        return 4
    if word.islower():
        return 0
    if len(word) > 1 and word.isupper():
        return 2
    if word[:1].isupper():
        return 1
    return 5


@dataclass
class WordTokens:
    """Sentences tokenised once: sub-token ids, each word's first sub-token and its target tag."""

    ids: torch.Tensor  # int64 (n, L) padded with pad_id
    lengths: np.ndarray  # int64 (n,) sub-tokens per sentence (special tokens included)
    first: torch.Tensor  # int64 (n, W) position of each word's first sub-token; -1 past the sentence or truncated
    n_words: np.ndarray  # int64 (n,) words per sentence
    targets: torch.Tensor  # int64 (n, W) each word's tag id, IGNORE where it has none
    pad_id: int
    token_types: bool
    shapes: torch.Tensor | None = None  # int64 (n, W) each word's ``word_shape``

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def truncated(self) -> int:
        """Words past ``max_length`` (predicted "O", never trained on)."""
        kept = (self.first >= 0).sum(dim=1).numpy()
        return int((self.n_words - kept).sum())

    def batch(self, rows: np.ndarray, device: torch.device, *, with_targets: bool = True, multiple: int = 1) -> dict[str, torch.Tensor]:
        """The model inputs of ``rows`` cut to the batch's longest sentence, on ``device``;
        ``targets`` (the words' tag ids, flattened in the order the model returns its logits)."""
        take = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        width = int(self.lengths[rows].max())
        if multiple > 1:
            width = min(-(-width // multiple) * multiple, int(self.ids.shape[1]))
        words = max(1, int(self.n_words[rows].max()))
        ids = self.ids.index_select(0, take)[:, :width]
        lens = torch.from_numpy(self.lengths[rows])
        first = self.first.index_select(0, take)[:, :words]
        out = {
            "input_ids": ids.to(device, non_blocking=True),
            "attention_mask": (torch.arange(width)[None, :] < lens[:, None]).long().to(device, non_blocking=True),
            "first": first.to(device, non_blocking=True),
        }
        if self.token_types:
            out["token_type_ids"] = torch.zeros_like(out["input_ids"])
        if self.shapes is not None:
            out["shapes"] = self.shapes.index_select(0, take)[:, :words][first >= 0].to(device, non_blocking=True)
        if with_targets:
            out["targets"] = self.targets.index_select(0, take)[:, :words][first >= 0].to(device, non_blocking=True)
        return out

    def padded(self, multiple: int) -> WordTokens:
        import torch.nn.functional as F

        extra = -int(self.ids.shape[1]) % multiple if multiple > 1 else 0
        return dataclasses.replace(self, ids=F.pad(self.ids, (0, extra), value=self.pad_id)) if extra else self


def tokenise_words(
    sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]] | None, tokenizer: Any, tag_index: dict[str, int], max_length: int
) -> WordTokens:
    """Every sentence tokenised as pre-split words (a fast tokenizer: it reports word ids)."""
    words = [[str(w) for w in s] or [""] for s in sentences]
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length, padding=False)
    n = len(words)
    lengths = np.fromiter((len(e) for e in enc["input_ids"]), dtype=np.int64, count=n)
    n_words = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=n)
    width_w = max(1, int(n_words.max(initial=1)))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = np.full((n, max(1, int(lengths.max(initial=1)))), pad, dtype=np.int64)
    first = np.full((n, width_w), -1, dtype=np.int64)
    targets = np.full((n, width_w), IGNORE, dtype=np.int64)
    shapes = np.zeros((n, width_w), dtype=np.int64)
    for i in range(n):
        row = enc["input_ids"][i]
        ids[i, : len(row)] = row
        seen = -1
        for pos, w in enumerate(enc.word_ids(i)):
            if w is not None and w != seen and w < n_words[i]:
                first[i, w] = pos
                seen = w
        shapes[i, : n_words[i]] = [word_shape(str(w)) for w in sentences[i]]
        if tags is not None:
            targets[i, : n_words[i]] = [tag_index.get(t, IGNORE) for t in tags[i]]
    targets[first < 0] = IGNORE
    token_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    return WordTokens(
        torch.from_numpy(ids), lengths, torch.from_numpy(first), n_words, torch.from_numpy(targets), int(pad), token_types,
        torch.from_numpy(shapes),
    )  # fmt: skip


class TokenTagger(nn.Module):
    """Encoder → (word vector ⊕ shape embedding) → dropout → linear head, read at each word's first
    sub-token.

    ``forward`` returns (N, C) logits of the batch's words, in (sentence, word) order, for the words
    whose ``first`` position is ≥ 0."""

    def __init__(self, encoder: nn.Module, n_tags: int, *, dropout: float = 0.1, shapes: bool = True) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = int(getattr(encoder.config, "hidden_size", 384))
        self.dropout = nn.Dropout(dropout)
        self.shape = nn.Embedding(len(SHAPES), SHAPE_DIM) if shapes else None
        self.head = nn.Linear(hidden + (SHAPE_DIM if shapes else 0), n_tags)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        first = batch["first"]
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        hidden = self.encoder(**inputs).last_hidden_state  # (B, L, H)
        valid = first >= 0
        rows = torch.arange(first.shape[0], device=first.device)[:, None].expand_as(first)
        words = hidden[rows[valid], first[valid]]  # (N, H): each kept word's first sub-token
        if self.shape is not None:
            shapes = batch["shapes"] if "shapes" in batch else torch.zeros(len(words), dtype=torch.long, device=words.device)
            words = torch.cat([words, self.shape(shapes).to(words.dtype)], dim=1)
        return self.head(self.dropout(words))


def build_tagger(
    source: str, n_tags: int, *, finetune: str = "full", last_n_blocks: int = 2, shapes: bool = True
) -> tuple[Any, TokenTagger, list[nn.Module]]:
    """(tokenizer, tagger, frozen modules) from a local transformers folder (nothing downloaded)."""
    from transformers import AutoModel

    from core.models.build import freeze
    from core.models.text import _load_error, _quiet_transformers, layer_list, load_tokenizer

    tokenizer = load_tokenizer(source)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{source}: token classification needs a fast tokenizer (one that reports word ids)")
    with _quiet_transformers():
        try:
            try:
                encoder = AutoModel.from_pretrained(source, local_files_only=True, attn_implementation="sdpa", add_pooling_layer=False)
            except (ValueError, TypeError):
                encoder = AutoModel.from_pretrained(source, local_files_only=True)
        except OSError as err:
            raise _load_error(source, err) from err
    tagger = TokenTagger(encoder, n_tags, shapes=shapes)
    frozen: list[nn.Module] = []
    if finetune == "last_n":
        layers = layer_list(encoder)
        n = min(last_n_blocks, len(layers))
        embeddings = getattr(encoder, "embeddings", None)
        frozen = freeze(([embeddings] if embeddings is not None else []) + list(layers[: len(layers) - n]))
    return tokenizer, tagger, frozen
