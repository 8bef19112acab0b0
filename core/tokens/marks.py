"""Sentences as the Simulate and Diagnose pages draw them, with some tokens marked, and the one edit a
reviewer makes by hand: give a run of tokens a type (or none).

``marked_segments`` cuts a sentence into its entity spans and the runs of tokens between them
(as ``core.tokens.stats.segments`` does), keeping each token's mark: a changed or suspect token is
drawn marked inside its span. ``changed_positions`` says which tokens two taggings of a sentence
disagree on, ``retag_span`` sets a run of tokens to one type and keeps what is left of the spans it
cuts, and ``tags_words`` says a sentence's spans in words. Pure Python, strict IOB2 (``spans``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from core.errors import DataError
from core.tokens.spans import OUTSIDE, Span, spans, tags_of

MarkedSegment = tuple[list[tuple[str, bool]], str | None]  # ([(token, marked), ...], entity type or None)


def marked_segments(tokens: Sequence[str], tags: Sequence[str], marked: Collection[int] = ()) -> list[MarkedSegment]:
    """The sentence as pieces: each entity span one piece (with its type), the tokens between spans
    one piece (type None); every token carries whether its position is in ``marked``."""
    if len(tokens) != len(tags):
        raise DataError(f"{len(tokens)} tokens but {len(tags)} tags: give one tag per token.")
    marks = set(int(i) for i in marked)
    out: list[MarkedSegment] = []

    def piece(start: int, end: int, kind: str | None) -> None:
        out.append(([(str(tokens[i]), i in marks) for i in range(start, end)], kind))

    at = 0
    for kind, start, end in spans(tags):
        if start > at:
            piece(at, start, None)
        piece(start, end, kind)
        at = end
    if at < len(tokens):
        piece(at, len(tokens), None)
    return out


def changed_positions(before: Sequence[str], after: Sequence[str]) -> list[int]:
    """Token positions whose entity differs between two taggings of one sentence: another type, or
    in another span (a boundary moved, a span set to O or added). Tags are read strictly, so an
    ``I-X`` that opens nothing counts as O."""
    if len(before) != len(after):
        raise DataError(f"The two taggings have {len(before)} and {len(after)} tags: they must tag the same sentence.")

    def owner(tags: Sequence[str]) -> list[Span | None]:
        out: list[Span | None] = [None] * len(tags)
        for s in spans(tags):
            for i in range(s[1], s[2]):
                out[i] = s
        return out

    a, b = owner(before), owner(after)
    return [i for i in range(len(before)) if a[i] != b[i]]


def retag_span(tags: Sequence[str], start: int, end: int, kind: str | None) -> list[str]:
    """``tags`` with tokens ``start`` to ``end`` (exclusive) made one span of ``kind`` (None or "O":
    no entity). A span the run overlaps keeps its tokens outside the run, as a span of its own on
    each side; the result is valid IOB2."""
    n = len(tags)
    if not 0 <= start < end <= n:
        raise DataError(f"Tokens {start} to {end} are not a run of this {n}-token sentence: pick a start before the end, within it.")
    kind = None if kind in (None, "", OUTSIDE) else str(kind)
    out: list[Span] = []
    for t, s, e in spans(tags):
        if e <= start or s >= end:
            out.append((t, s, e))
            continue
        if s < start:
            out.append((t, s, start))
        if e > end:
            out.append((t, end, e))
    if kind is not None:
        out.append((kind, start, end))
    return tags_of(sorted(out, key=lambda x: x[1]), n)


def tags_words(tokens: Sequence[str], tags: Sequence[str]) -> str:
    """The sentence's entities in words: "EU (ORG), German (MISC)", or "no entity"."""
    found = spans(tags)
    if not found:
        return "no entity"
    return ", ".join(f"{' '.join(tokens[s:e])} ({t})" for t, s, e in found)
