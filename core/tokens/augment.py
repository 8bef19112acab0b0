"""Tag-preserving augmentation for token classification (Dai & Adel 2020, "An Analysis of Simple
Data Augmentation for Named Entity Recognition"). Pure functions on lists, seeded by a
``np.random.Generator``, torch-free.

- **label-wise token replacement** (LwTR): each token, with probability p, becomes another train
  token of the same tag, drawn by its train frequency (``TokenTable``);
- **synonym replacement** (SR): each token, with probability p, becomes one of its WordNet
  synonyms (``core.mitigate.language``); a synonym of several words takes B-X then I-X for a
  B-X token, I-X throughout for I-X, O for O, so the span keeps its type and grows;
- **mention replacement** (MR): each mention, with probability p, becomes another train mention
  of the same type, drawn by its train frequency, tagged B-X I-X …;
- **shuffle within segments** (SiS): the sentence is cut into segments of one label (each mention
  one segment, each run of O one segment) and each segment's tokens are shuffled with
  probability p; the tags stay where they are.

Each decision is a Bernoulli draw per token, mention or segment (the paper's binomial). The tags
are read strictly (``core.tokens.spans``) and come back as valid IOB2: on valid IOB2 input with
p = 0 every operation is the identity. ``augment_sentences`` adds copies made by a mix of the four
(``TokenAugment``); ``preview`` shows a few sentences before and after, the changed tokens marked.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from core.errors import DataError
from core.tokens.spans import OUTSIDE, Span, spans, split_tag, tags_of

T = TypeVar("T")
Lookup = Callable[[str], Sequence[str]]  # a word → its synonyms (a synonym may hold several words)
Marked = tuple[str, str, bool]  # (token, tag, changed)
MAX_COPIES = 10
OPERATIONS = {
    "mention": "Mention replacement",
    "lwtr": "Label-wise token replacement",
    "synonym": "Synonym replacement",
    "shuffle": "Shuffle within segments",
}  # also the order a copy applies them in


def strict_tags(tags: Sequence[str]) -> list[str]:
    """The tags as the strict reading sees them: valid IOB2 (an ``I-X`` that opens nothing is O)."""
    return tags_of(spans(tags), len(tags))


# ---------------------------------------------------------------------- the train tables


class Choices(Generic[T]):
    """Values with their train counts; ``draw`` picks one by count, never the one excluded."""

    def __init__(self, counts: Mapping[T, int]) -> None:
        self.values: list[T] = sorted(counts, key=repr)  # a fixed order, whatever the dict's
        self.weights = np.array([counts[v] for v in self.values], dtype=np.float64)
        self.cumulative = np.cumsum(self.weights)
        self.total = float(self.cumulative[-1]) if len(self.values) else 0.0
        self.index = {v: i for i, v in enumerate(self.values)}

    def __len__(self) -> int:
        return len(self.values)

    def draw(self, rng: np.random.Generator, exclude: T | None = None) -> T | None:
        """A value drawn by count among those other than ``exclude`` (None when there is none);
        one uniform number each time, the excluded value's share cut out of the line."""
        at = self.index.get(exclude) if exclude is not None else None
        cut = float(self.weights[at]) if at is not None else 0.0
        if self.total - cut <= 0:
            return None
        u = rng.random() * (self.total - cut)
        if at is not None and u >= self.cumulative[at] - cut:
            u += cut
        j = min(int(np.searchsorted(self.cumulative, u, side="right")), len(self.values) - 1)
        return self.values[j]


@dataclass(frozen=True, eq=False)
class TokenTable:
    """Train tokens per tag (LwTR) and train mentions per type (MR), with their counts."""

    tokens: Mapping[str, Choices[str]]
    mentions: Mapping[str, Choices[tuple[str, ...]]]

    @classmethod
    def from_train(cls, tokens_list: Sequence[Sequence[str]], tags_list: Sequence[Sequence[str]]) -> TokenTable:
        check_pairs(tokens_list, tags_list)
        by_tag: dict[str, Counter[str]] = {}
        by_type: dict[str, Counter[tuple[str, ...]]] = {}
        for tokens, tags in zip(tokens_list, tags_list):
            for token, tag in zip(tokens, strict_tags(tags)):
                by_tag.setdefault(tag, Counter())[str(token)] += 1
            for kind, start, end in spans(tags):
                by_type.setdefault(kind, Counter())[tuple(str(t) for t in tokens[start:end])] += 1
        return cls(tokens={t: Choices(c) for t, c in by_tag.items()}, mentions={k: Choices(c) for k, c in by_type.items()})


def check_pairs(tokens_list: Sequence[Sequence[str]], tags_list: Sequence[Sequence[str]]) -> None:
    if len(tokens_list) != len(tags_list):
        raise DataError(f"{len(tokens_list)} token sentences but {len(tags_list)} tag sentences: give one tag list per sentence.")
    for i, (tokens, tags) in enumerate(zip(tokens_list, tags_list)):
        if len(tokens) != len(tags):
            raise DataError(f"Sentence {i} has {len(tokens)} tokens but {len(tags)} tags: give one tag per token.")


def _rate(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise DataError(f"An augmentation probability must be in [0, 1], not {p}.")
    return float(p)


# ---------------------------------------------------------------------- one sentence, as it changes


@dataclass
class _Sentence:
    """A sentence while a copy is made: ``origin`` is each token's position in the original
    (−1 for a token the augmentation brought), ``changed`` whether it differs from what was there."""

    tokens: list[str]
    tags: list[str]
    origin: list[int]
    changed: list[bool]

    @classmethod
    def of(cls, tokens: Sequence[str], tags: Sequence[str]) -> _Sentence:
        if len(tokens) != len(tags):
            raise DataError(f"{len(tokens)} tokens but {len(tags)} tags: give one tag per token.")
        n = len(tokens)
        return cls([str(t) for t in tokens], strict_tags(tags), list(range(n)), [False] * n)

    def splice(self, start: int, end: int, tokens: Sequence[str], tags: Sequence[str]) -> None:
        """Tokens [start, end) become ``tokens`` (new ones, all changed)."""
        self.tokens[start:end] = list(tokens)
        self.tags[start:end] = list(tags)
        self.origin[start:end] = [-1] * len(tokens)
        self.changed[start:end] = [True] * len(tokens)

    def marked(self) -> list[Marked]:
        return list(zip(self.tokens, self.tags, self.changed))

    def before(self, tokens: Sequence[str], tags: Sequence[str]) -> list[Marked]:
        """The original, each token marked unless it is still there, unchanged."""
        kept = {o for o, c in zip(self.origin, self.changed) if o >= 0 and not c}
        return [(str(t), tag, i not in kept) for i, (t, tag) in enumerate(zip(tokens, strict_tags(tags)))]


def _lwtr(s: _Sentence, p: float, table: TokenTable, rng: np.random.Generator) -> None:
    hits = np.flatnonzero(rng.random(len(s.tokens)) < p).tolist()
    for j in hits:
        choices = table.tokens.get(s.tags[j])
        new = choices.draw(rng, exclude=s.tokens[j]) if choices is not None else None
        if new is not None:
            s.tokens[j], s.origin[j], s.changed[j] = new, -1, True


def _synonym_tags(tag: str, n: int) -> list[str]:
    prefix, kind = split_tag(tag)
    if prefix == OUTSIDE:
        return [OUTSIDE] * n
    return [tag] + [f"I-{kind}"] * (n - 1)


def _synonym(s: _Sentence, p: float, lookup: Lookup, rng: np.random.Generator) -> None:
    hits = np.flatnonzero(rng.random(len(s.tokens)) < p).tolist()
    for j in reversed(hits):  # right to left: a longer synonym moves only what comes after it
        options = [o for o in lookup(s.tokens[j]) if o.replace("_", " ").split()]
        if not options:
            continue
        words = options[int(rng.integers(len(options)))].replace("_", " ").split()
        if s.tokens[j][:1].isupper():
            words[0] = words[0][:1].upper() + words[0][1:]
        if words == [s.tokens[j]]:
            continue
        s.splice(j, j + 1, words, _synonym_tags(s.tags[j], len(words)))


def _mention(s: _Sentence, p: float, table: TokenTable, rng: np.random.Generator) -> None:
    found = spans(s.tags)
    hits = np.flatnonzero(rng.random(len(found)) < p).tolist()
    for j in reversed(hits):
        kind, start, end = found[j]
        choices = table.mentions.get(kind)
        new = choices.draw(rng, exclude=tuple(s.tokens[start:end])) if choices is not None else None
        if new is not None:
            s.splice(start, end, new, tags_of([(kind, 0, len(new))], len(new)))


def segments(tags: Sequence[str]) -> list[tuple[int, int]]:
    """[start, end) of each segment of one label: every mention, every run of O (strict reading)."""
    out: list[tuple[int, int]] = []
    at = 0
    for _, start, end in spans(tags):
        if start > at:
            out.append((at, start))
        out.append((start, end))
        at = end
    if at < len(tags):
        out.append((at, len(tags)))
    return out


def _shuffle(s: _Sentence, p: float, rng: np.random.Generator) -> None:
    parts = segments(s.tags)
    hits = np.flatnonzero(rng.random(len(parts)) < p).tolist()
    for j in hits:
        start, end = parts[j]
        if end - start < 2:
            continue
        order = (start + rng.permutation(end - start)).tolist()
        tokens, origin, changed = [s.tokens[i] for i in order], [s.origin[i] for i in order], [s.changed[i] for i in order]
        for k, i in enumerate(range(start, end)):
            changed[k] = changed[k] or tokens[k] != s.tokens[i]
        s.tokens[start:end], s.origin[start:end], s.changed[start:end] = tokens, origin, changed


# ---------------------------------------------------------------------- the four, one at a time


def label_wise_replace(
    tokens: Sequence[str], tags: Sequence[str], p: float, table: TokenTable, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """LwTR: each token, with probability ``p``, another train token of its tag (by train count)."""
    s = _Sentence.of(tokens, tags)
    _lwtr(s, _rate(p), table, rng)
    return s.tokens, s.tags


def synonym_replace(
    tokens: Sequence[str], tags: Sequence[str], p: float, rng: np.random.Generator, lookup: Lookup | None = None
) -> tuple[list[str], list[str]]:
    """SR: each token, with probability ``p``, one of its synonyms (WordNet unless ``lookup`` is
    given); several words take B-X I-X … (for B-X), I-X … (for I-X) or O … (for O)."""
    s = _Sentence.of(tokens, tags)
    _synonym(s, _rate(p), lookup or wordnet_lookup(), rng)
    return s.tokens, s.tags


def mention_replace(
    tokens: Sequence[str], tags: Sequence[str], p: float, table: TokenTable, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """MR: each mention, with probability ``p``, another train mention of its type (by train count)."""
    s = _Sentence.of(tokens, tags)
    _mention(s, _rate(p), table, rng)
    return s.tokens, s.tags


def shuffle_within_segments(tokens: Sequence[str], tags: Sequence[str], p: float, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """SiS: each segment of one label (a mention, a run of O), with probability ``p``, shuffled."""
    s = _Sentence.of(tokens, tags)
    _shuffle(s, _rate(p), rng)
    return s.tokens, s.tags


def wordnet_lookup() -> Lookup:
    """WordNet's synonyms (``core.mitigate.language.synonyms``); a ``DataError`` when the asset is absent."""
    from core.mitigate import language

    if not language.wordnet_ready():
        raise DataError("Synonym replacement needs WordNet, which is not fetched on this machine: fetch the wordnet asset, or set it to 0.")
    return language.synonyms


# ---------------------------------------------------------------------- a mix of them, on a train split


@dataclass(frozen=True)
class TokenAugment:
    """Which augmentations make each copy, with their probabilities; ``copies`` per sentence;
    ``types``: only sentences holding one of these entity types (empty: every sentence)."""

    lwtr: float = 0.0
    synonym: float = 0.0
    mention: float = 0.0
    shuffle: float = 0.0
    copies: int = 1
    types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = [
            f"{OPERATIONS[name]} must be in [0, 1], not {getattr(self, name)}"
            for name in OPERATIONS
            if not 0.0 <= getattr(self, name) <= 1.0
        ]
        if isinstance(self.copies, bool) or not isinstance(self.copies, int | np.integer) or not 1 <= self.copies <= MAX_COPIES:
            problems.append(f"copies per sentence must be a whole number from 1 to {MAX_COPIES}, not {self.copies!r}")
        if not isinstance(self.types, tuple) or not all(isinstance(t, str) and t for t in self.types):
            problems.append(f"types must be a tuple of entity type names, not {self.types!r}")
        if problems:
            raise DataError("This augmentation cannot work: " + "; ".join(problems) + ".")

    @property
    def active(self) -> bool:
        return any(getattr(self, name) > 0 for name in OPERATIONS)

    def words(self) -> str:
        """ "Mention replacement 0.3 · Shuffle within segments 0.3 · 2 copies · only sentences with LOC"."""
        parts = [f"{label} {getattr(self, name):g}" for name, label in OPERATIONS.items() if getattr(self, name) > 0]
        if not parts:
            return "No augmentation"
        parts.append(f"{self.copies} cop{'y' if self.copies == 1 else 'ies'} per sentence")
        if self.types:
            parts.append(f"only sentences with {', '.join(self.types)}")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["types"] = list(self.types)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TokenAugment:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "types" in kw:
            kw["types"] = tuple(str(t) for t in kw["types"])
        return cls(**kw)


def _copy(
    tokens: Sequence[str], tags: Sequence[str], settings: TokenAugment, table: TokenTable, lookup: Lookup | None, rng: np.random.Generator
) -> _Sentence:
    """One augmented copy: MR, LwTR, SR, then SiS, each where its probability is above 0."""
    s = _Sentence.of(tokens, tags)
    if settings.mention > 0:
        _mention(s, settings.mention, table, rng)
    if settings.lwtr > 0:
        _lwtr(s, settings.lwtr, table, rng)
    if settings.synonym > 0 and lookup is not None:
        _synonym(s, settings.synonym, lookup, rng)
    if settings.shuffle > 0:
        _shuffle(s, settings.shuffle, rng)
    return s


def chosen_sentences(tags_list: Sequence[Sequence[str]], types: Sequence[str]) -> list[int]:
    """The sentences an augmentation copies: all, or those holding one of ``types``."""
    if not types:
        return list(range(len(tags_list)))
    wanted = set(types)
    return [i for i, tags in enumerate(tags_list) if any(k in wanted for k, _, _ in spans(tags))]


def _ready(
    tokens_list: Sequence[Sequence[str]],
    tags_list: Sequence[Sequence[str]],
    settings: TokenAugment,
    table: TokenTable | None,
    lookup: Lookup | None,
) -> tuple[TokenTable, Lookup | None]:
    check_pairs(tokens_list, tags_list)
    if table is None:
        table = TokenTable.from_train(tokens_list, tags_list)
    if settings.synonym > 0 and lookup is None:
        lookup = wordnet_lookup()
    return table, lookup


def augmented_copies(
    tokens_list: Sequence[Sequence[str]],
    tags_list: Sequence[Sequence[str]],
    settings: TokenAugment,
    rng: np.random.Generator,
    *,
    table: TokenTable | None = None,
    lookup: Lookup | None = None,
) -> tuple[list[list[str]], list[list[str]], list[int]]:
    """(tokens, tags, source sentence) of ``settings.copies`` copies of each chosen sentence (none
    when no augmentation is on). ``table`` defaults to one built from these sentences (the train
    split); ``lookup`` to WordNet."""
    if not settings.active:
        check_pairs(tokens_list, tags_list)
        return [], [], []
    table, lookup = _ready(tokens_list, tags_list, settings, table, lookup)
    out_tokens, out_tags, sources = [], [], []
    for i in chosen_sentences(tags_list, settings.types):
        for _ in range(settings.copies):
            s = _copy(tokens_list[i], tags_list[i], settings, table, lookup, rng)
            out_tokens.append(s.tokens)
            out_tags.append(s.tags)
            sources.append(i)
    return out_tokens, out_tags, sources


def copy_sources(tags_list: Sequence[Sequence[str]], settings: TokenAugment) -> list[int]:
    """The sentence each copy ``augmented_copies`` makes comes from, in its order, without making
    them (none when no augmentation is on): how many copies an epoch adds."""
    if not settings.active:
        return []
    return [i for i in chosen_sentences(tags_list, settings.types) for _ in range(settings.copies)]


def augment_sentences(
    tokens_list: Sequence[Sequence[str]],
    tags_list: Sequence[Sequence[str]],
    settings: TokenAugment,
    rng: np.random.Generator,
    *,
    table: TokenTable | None = None,
    lookup: Lookup | None = None,
) -> tuple[list[list[str]], list[list[str]]]:
    """The train split with its augmented copies: the sentences as given, then the copies
    (``augmented_copies``), as new lists."""
    tokens, tags, _ = augmented_copies(tokens_list, tags_list, settings, rng, table=table, lookup=lookup)
    return [[str(t) for t in s] for s in tokens_list] + tokens, [list(t) for t in tags_list] + tags


def preview(
    tokens_list: Sequence[Sequence[str]],
    tags_list: Sequence[Sequence[str]],
    settings: TokenAugment,
    seed: int = 0,
    k: int = 3,
    *,
    table: TokenTable | None = None,
    lookup: Lookup | None = None,
) -> list[tuple[list[Marked], list[Marked]]]:
    """Up to ``k`` (before, after) pairs of one copy each, as (token, tag, changed) lists: before
    marks the tokens that did not stay in place unchanged, after those the augmentation changed.

    The sentences are drawn (seeded) among the chosen ones holding an entity (any chosen one when
    none does), those the augmentation changed first: at most ``20 × k`` are tried."""
    table, lookup = _ready(tokens_list, tags_list, settings, table, lookup)
    chosen = chosen_sentences(tags_list, settings.types)
    holding = [i for i in chosen if spans(tags_list[i])] or chosen
    rng = np.random.default_rng(seed)
    changed: list[tuple[list[Marked], list[Marked]]] = []
    same: list[tuple[list[Marked], list[Marked]]] = []
    for i in rng.permutation(np.array(holding, dtype=np.int64))[: 20 * k].tolist():
        s = _copy(tokens_list[i], tags_list[i], settings, table, lookup, rng)
        pair = (s.before(tokens_list[i], tags_list[i]), s.marked())
        (changed if any(s.changed) else same).append(pair)
        if len(changed) >= k:
            break
    return (changed + same)[:k]


def spans_of(marked: Sequence[Marked]) -> list[Span]:
    """The entity spans of a previewed sentence (for drawing them)."""
    return spans([tag for _, tag, _ in marked])
