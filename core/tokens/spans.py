"""Entity spans of IOB2 tag sequences, read strictly (as seqeval's strict IOB2 mode reads them).

A span opens at ``B-X`` and goes on through every following ``I-X``; an ``I-X`` that does not continue
a span of type X opens nothing (strict reading). Spans are ``(type, start, end)`` with ``end``
exclusive. Pure Python, no torch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

OUTSIDE = "O"
NO_ENTITY = "(no entity)"  # the sentence label of a sentence without an entity

Span = tuple[str, int, int]  # (type, start, end exclusive)


def split_tag(tag: str) -> tuple[str, str]:
    """("B", "PER") for "B-PER"; ("O", "") for "O"."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def spans(tags: Sequence[str]) -> list[Span]:
    """The entities of one IOB2 sentence, strictly: ``[("PER", 0, 2), ...]``."""
    out: list[Span] = []
    kind, start = "", -1
    for i, tag in enumerate(tags):
        prefix, t = split_tag(tag)
        if prefix == "I" and start >= 0 and t == kind:
            continue
        if start >= 0:
            out.append((kind, start, i))
            kind, start = "", -1
        if prefix == "B":
            kind, start = t, i
    if start >= 0:
        out.append((kind, start, len(tags)))
    return out


def tags_of(spans_: Iterable[Span], length: int) -> list[str]:
    """IOB2 tags of ``length`` tokens holding ``spans_`` (which must not overlap)."""
    tags = [OUTSIDE] * length
    for kind, start, end in spans_:
        tags[start] = f"B-{kind}"
        for i in range(start + 1, end):
            tags[i] = f"I-{kind}"
    return tags


def entity_types(tag_seqs: Iterable[Sequence[str]]) -> list[str]:
    """Every entity type that appears in a tag (B- or I-), sorted."""
    found = {split_tag(t)[1] for seq in tag_seqs for t in seq if t != OUTSIDE}
    return sorted(found - {""})


def tag_names(types: Sequence[str]) -> list[str]:
    """The IOB2 tag set of ``types``: "O", then B-X and I-X for each type in order."""
    return [OUTSIDE, *(f"{p}-{t}" for t in types for p in ("B", "I"))]


def mention_counts(tag_seqs: Iterable[Sequence[str]]) -> Counter[str]:
    """Entity mentions (strict spans) per type."""
    return Counter(kind for seq in tag_seqs for kind, _, _ in spans(seq))


def sentence_labels(tag_seqs: Sequence[Sequence[str]], train: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """Each sentence's rarest entity type, as (labels int64 (n,), class_names).

    ``class_names`` is ``[NO_ENTITY, *types]`` (types sorted); "rarest" counts mentions in the
    sentences where ``train`` is True (all when None), ties broken by name; a type never seen in
    train counts 0 (rarest of all). A sentence with no entity gets 0 (``NO_ENTITY``)."""
    types = entity_types(tag_seqs)
    mask = np.ones(len(tag_seqs), bool) if train is None else np.asarray(train, bool)
    counts = mention_counts(seq for seq, m in zip(tag_seqs, mask) if m)
    index = {t: i + 1 for i, t in enumerate(types)}
    labels = np.zeros(len(tag_seqs), np.int64)
    for i, seq in enumerate(tag_seqs):
        present = {kind for kind, _, _ in spans(seq)}
        if present:
            labels[i] = index[min(present, key=lambda t: (counts.get(t, 0), t))]
    return labels, [NO_ENTITY, *types]
