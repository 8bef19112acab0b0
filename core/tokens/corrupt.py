"""The simulator for token data: make a clean NER train split incomplete on purpose, keeping the truth.

Every step reads the tags strictly (``core.tokens.spans``), changes spans, and writes the changed
sentences back as valid IOB2 (``tags_of``); a sentence it does not change keeps its tags exactly.
Only the sentences marked ``train`` are touched, so val and test stay as they are.

- ``thin_type`` keeps ``round(keep_share × n)`` of the n train sentences holding a type (a long tail);
- ``drop_type`` removes a type: its annotations set to O (``mode="annotations"``) or the train
  sentences holding it left out (``mode="sentences"``);
- ``flip_types`` changes the type of ``round(rate × n)`` of the n spans that can change type
  (by a mapping, or to a uniformly drawn other type still in train);
- ``delete_spans`` sets ``round(rate × n)`` of the n spans to O (missing annotations);
- ``shift_boundaries`` moves one end of ``round(rate × n)`` of the n spans by one token (extended
  or shrunk, inside the sentence, never into another span, never empty), fewer when fewer can move.

Counts are exact (``round``, half to even, as in ``core.simulate``), never binomial draws; the spans
are chosen by a seeded shuffle. ``inject_noise`` is the detector benchmark's noise: a share of the
sentences that hold an entity get one corruption each. A ``TokenRecipe`` chains the steps on
train only; ``apply_recipe`` returns the new tags, which sentences stay, and the truth.

A truth record (one per sentence, ``None`` when nothing happened to it) keeps ``true_tags`` (the
tags before) and every change as ``{"kind", "before", "after"}`` with spans ``(type, start, end)``;
kinds are ``"drop"`` (annotation removed with its type), ``"swap"`` (type changed), ``"delete"``
(span set to O) and ``"shift"`` (one end moved). Torch-free.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.data.splits import SPLIT_ALIASES
from core.errors import DataError
from core.tokens.spans import Span, spans, tags_of

TRAIN = 0
NOISE_KINDS = {"swap": "type swapped", "delete": "span deleted", "shift": "boundary shifted"}
DROP_MODES = {"annotations": "annotations set to O", "sentences": "sentences left out"}
Truth = dict[str, Any]


# ---------------------------------------------------------------------- spans, one sentence


def shift_options(sentence: Sequence[Span], i: int, length: int) -> list[Span]:
    """Where span ``i`` of a sentence of ``length`` tokens may go by moving one end one token:
    extended into an O token (inside the sentence, not into another span) or shrunk (not empty)."""
    kind, start, end = sentence[i]
    before = sentence[i - 1][2] if i > 0 else 0  # the first token the span may take on the left
    after = sentence[i + 1][1] if i + 1 < len(sentence) else length
    out: list[Span] = []
    if start - 1 >= before:
        out.append((kind, start - 1, end))
    if end + 1 <= after:
        out.append((kind, start, end + 1))
    if end - start > 1:
        out += [(kind, start + 1, end), (kind, start, end - 1)]
    return out


def _check_pairs(tokens_list: Sequence[Sequence[str]], tags_list: Sequence[Sequence[str]]) -> None:
    if len(tokens_list) != len(tags_list):
        raise DataError(f"{len(tokens_list)} token sentences but {len(tags_list)} tag sentences: give one tag list per sentence.")
    for i, (tokens, tags) in enumerate(zip(tokens_list, tags_list)):
        if len(tokens) != len(tags):
            raise DataError(f"Sentence {i} has {len(tokens)} tokens but {len(tags)} tags: give one tag per token.")


def _share(value: float, what: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise DataError(f"The {what} must be in [0, 1], not {value}.")
    return float(value)


# ---------------------------------------------------------------------- the state the steps share


@dataclass
class Corrupted:
    """What a step or a recipe did: ``tags`` for every sentence (those left out keep theirs),
    ``kept`` (False: left out of train), and ``truth`` (one record per sentence, None if untouched)."""

    tags: list[list[str]]
    kept: np.ndarray
    truth: list[Truth | None]

    @property
    def changed(self) -> np.ndarray:
        """(n,) bool: the sentence's tags changed."""
        return np.array([t is not None and bool(t["changes"]) for t in self.truth], dtype=bool)


@dataclass
class _Work:
    """The sentences as spans while the steps run, and what each step did."""

    true: list[list[str]]
    lengths: list[int]
    spans: list[list[Span]]
    train: np.ndarray
    kept: np.ndarray
    changes: list[list[Truth]] = field(default_factory=list)
    removed: list[str | None] = field(default_factory=list)

    @classmethod
    def of(cls, tags_list: Sequence[Sequence[str]], train: Any = None) -> _Work:
        n = len(tags_list)
        mask = np.ones(n, bool) if train is None else np.asarray(train, dtype=bool)
        if mask.shape != (n,):
            raise DataError(f"The train mask has {mask.size} entries for {n} sentences: give one per sentence.")
        return cls(
            true=[list(t) for t in tags_list],
            lengths=[len(t) for t in tags_list],
            spans=[spans(t) for t in tags_list],
            train=mask,
            kept=np.ones(n, bool),
            changes=[[] for _ in range(n)],
            removed=[None] * n,
        )

    def open(self) -> list[int]:
        """The sentences a step may change: train, not left out."""
        return np.flatnonzero(self.train & self.kept).tolist()

    def types(self) -> list[str]:
        """Entity types in the open sentences."""
        return sorted({k for i in self.open() for k, _, _ in self.spans[i]})

    def all_types(self) -> list[str]:
        return sorted({k for s in self.spans for k, _, _ in s})

    def check_type(self, kind: str, what: str) -> None:
        known = self.all_types()
        if kind not in known:
            raise DataError(f"{what}: no entity type {kind!r}; these sentences hold {', '.join(known) or 'none'}.")

    def pool(self, untouched: bool = True) -> list[tuple[int, Span]]:
        """(sentence, span) of every span in the open sentences, not yet changed when ``untouched``."""
        out = []
        for i in self.open():
            done = {c["after"] for c in self.changes[i]} if untouched else set()
            out += [(i, s) for s in self.spans[i] if s not in done]
        return out

    def change(self, i: int, kind: str, before: Span, after: Span | None) -> None:
        sentence = self.spans[i]
        at = sentence.index(before)
        if after is None:
            del sentence[at]
        else:
            sentence[at] = after
        self.changes[i].append({"kind": kind, "before": before, "after": after})

    def result(self) -> Corrupted:
        tags: list[list[str]] = []
        truth: list[Truth | None] = []
        for i, true in enumerate(self.true):
            changed = bool(self.changes[i])
            tags.append(tags_of(self.spans[i], self.lengths[i]) if changed else list(true))
            if changed or self.removed[i]:
                truth.append({"corrupted": changed, "removed": self.removed[i], "changes": list(self.changes[i]), "true_tags": list(true)})
            else:
                truth.append(None)
        return Corrupted(tags=tags, kept=self.kept.copy(), truth=truth)


# ---------------------------------------------------------------------- the steps, on the shared state


def _thin(work: _Work, kind: str, keep_share: float, rng: np.random.Generator) -> None:
    holding = [i for i in work.open() if any(k == kind for k, _, _ in work.spans[i])]
    leave = rng.permutation(holding)[: len(holding) - round(keep_share * len(holding))]
    for i in sorted(leave.tolist()):
        work.kept[i] = False
        work.removed[i] = "thin"


def _drop(work: _Work, kind: str, mode: str) -> None:
    for i in work.open():
        mine = [s for s in work.spans[i] if s[0] == kind]
        if not mine:
            continue
        if mode == "sentences":
            work.kept[i] = False
            work.removed[i] = "drop"
        else:
            for s in mine:
                work.change(i, "drop", s, None)


def _flip_target(kind: str, mapping: Mapping[str, str] | None, types: list[str], rng: np.random.Generator) -> str | None:
    if mapping is not None:
        return mapping.get(kind)
    others = [t for t in types if t != kind]
    return others[int(rng.integers(len(others)))] if others else None


def _flip(work: _Work, rate: float, mapping: Mapping[str, str] | None, rng: np.random.Generator, n: int | None = None) -> None:
    types = work.types()
    eligible = [(i, s) for i, s in work.pool() if (s[0] in mapping if mapping is not None else len(types) > 1)]
    count = min(len(eligible), round(rate * (len(eligible) if n is None else n)))
    for j in sorted(rng.permutation(len(eligible))[:count].tolist()):
        i, s = eligible[j]
        target = _flip_target(s[0], mapping, types, rng)
        if target is not None:
            work.change(i, "swap", s, (target, s[1], s[2]))


def _delete(work: _Work, rate: float, rng: np.random.Generator, n: int | None = None) -> None:
    eligible = work.pool()
    count = min(len(eligible), round(rate * (len(eligible) if n is None else n)))
    for j in sorted(rng.permutation(len(eligible))[:count].tolist()):
        i, s = eligible[j]
        work.change(i, "delete", s, None)


def _shift(work: _Work, rate: float, rng: np.random.Generator, n: int | None = None) -> None:
    """Spans taken in a seeded order, each moved where it still can (a move earlier in the same
    sentence may have taken the token it needed), until the count is reached or none is left."""
    eligible = work.pool()
    count = round(rate * (len(eligible) if n is None else n))
    done = 0
    for j in rng.permutation(len(eligible)).tolist():
        if done >= count:
            break
        i, s = eligible[j]
        options = shift_options(work.spans[i], work.spans[i].index(s), work.lengths[i])
        if options:
            work.change(i, "shift", s, options[int(rng.integers(len(options)))])
            done += 1


# ---------------------------------------------------------------------- the steps, one at a time


def thin_type(tags_list: Sequence[Sequence[str]], kind: str, keep_share: float, *, train: Any = None, seed: int = 0) -> Corrupted:
    """Keep ``round(keep_share × n)`` of the n train sentences holding ``kind``; the rest are left out."""
    work = _Work.of(tags_list, train)
    work.check_type(kind, "Thin a type")
    _thin(work, kind, _share(keep_share, "share of sentences to keep"), np.random.default_rng(seed))
    return work.result()


def drop_type(tags_list: Sequence[Sequence[str]], kind: str, *, mode: str = "annotations", train: Any = None) -> Corrupted:
    """Remove ``kind`` from train: its annotations set to O, or (``mode="sentences"``) the train
    sentences holding it left out."""
    if mode not in DROP_MODES:
        raise DataError(f"The drop mode must be one of {', '.join(DROP_MODES)}, not {mode!r}.")
    work = _Work.of(tags_list, train)
    work.check_type(kind, "Drop a type")
    _drop(work, kind, mode)
    return work.result()


def flip_types(
    tags_list: Sequence[Sequence[str]], rate: float, mapping: Mapping[str, str] | None = None, *, train: Any = None, seed: int = 0
) -> Corrupted:
    """Change the type of ``round(rate × n)`` of the n train spans that can change: those of a
    type ``mapping`` names (to its target), or with no mapping any span (to a uniformly drawn other
    type of the train sentences)."""
    work = _Work.of(tags_list, train)
    if mapping is not None:
        for source, target in mapping.items():
            work.check_type(source, "Flip types")
            work.check_type(target, "Flip types")
            if target == source:
                raise DataError(f"Flip types: {source!r} must map to another type, not to itself.")
    _flip(work, _share(rate, "share of spans to flip"), mapping, np.random.default_rng(seed))
    return work.result()


def delete_spans(tags_list: Sequence[Sequence[str]], rate: float, *, train: Any = None, seed: int = 0) -> Corrupted:
    """Set ``round(rate × n)`` of the n train spans to O (missing annotations)."""
    work = _Work.of(tags_list, train)
    _delete(work, _share(rate, "share of spans to delete"), np.random.default_rng(seed))
    return work.result()


def shift_boundaries(tags_list: Sequence[Sequence[str]], rate: float, *, train: Any = None, seed: int = 0) -> Corrupted:
    """Move one end of ``round(rate × n)`` of the n train spans by one token (fewer if fewer can move)."""
    work = _Work.of(tags_list, train)
    _shift(work, _share(rate, "share of spans to shift"), np.random.default_rng(seed))
    return work.result()


# ---------------------------------------------------------------------- the benchmark's noise


def _noise_kinds(sentence: list[Span], length: int, kinds: Sequence[str], n_types: int) -> list[str]:
    """The kinds of corruption a sentence can take."""
    movable = any(shift_options(sentence, j, length) for j in range(len(sentence)))
    possible = {"delete": True, "swap": n_types > 1, "shift": movable}
    return [kind for kind in kinds if possible[kind]]


def _corrupt_one(sentence: list[Span], length: int, kind: str, types: list[str], rng: np.random.Generator) -> tuple[Span, Span | None]:
    """(before, after) of one corruption of ``kind`` on a span of ``sentence`` (changed in place)."""
    if kind == "shift":
        movable = [j for j in range(len(sentence)) if shift_options(sentence, j, length)]
        j = movable[int(rng.integers(len(movable)))]
        options = shift_options(sentence, j, length)
        after: Span | None = options[int(rng.integers(len(options)))]
    else:
        j = int(rng.integers(len(sentence)))
        others = [t for t in types if t != sentence[j][0]]
        after = (others[int(rng.integers(len(others)))], sentence[j][1], sentence[j][2]) if kind == "swap" else None
    before = sentence[j]
    if after is None:
        del sentence[j]
    else:
        sentence[j] = after
    return before, after


def inject_noise(
    tokens_list: Sequence[Sequence[str]],
    tags_list: Sequence[Sequence[str]],
    *,
    sentence_share: float = 0.10,
    kinds: Sequence[str] = ("swap", "delete", "shift"),
    seed: int = 0,
) -> tuple[list[list[str]], list[dict[str, Any] | None]]:
    """Annotation noise with the truth: ``round(sentence_share × n)`` of the n sentences holding an
    entity get exactly one corruption each.

    The sentences are chosen by a seeded shuffle among those that can take one of ``kinds`` (with
    ``"delete"`` among them every one can; without it, fewer are corrupted when fewer can); the
    kinds go round in turn over them, so each gets an equal share (±1) but for the sentences that
    cannot take their turn's kind and take one they can, drawn. ``swap`` gives a span another type of the data, ``delete`` sets a span
    to O, ``shift`` moves one end of a span by one token (``shift_options``).

    Returns the noisy tags (untouched sentences keep theirs exactly) and one record per sentence,
    None when untouched, else ``{"corrupted": True, "kind", "before": span, "after": span or None,
    "true_tags"}`` with spans ``(type, start, end)``."""
    _check_pairs(tokens_list, tags_list)
    _share(sentence_share, "share of sentences to corrupt")
    unknown = [k for k in kinds if k not in NOISE_KINDS]
    if unknown or not kinds:
        raise DataError(f"Noise kinds must be some of {', '.join(NOISE_KINDS)}, not {list(kinds)!r}.")
    rng = np.random.default_rng(seed)
    all_spans = [spans(t) for t in tags_list]
    types = sorted({k for s in all_spans for k, _, _ in s})
    holding = [i for i, s in enumerate(all_spans) if s]
    can = {i: _noise_kinds(all_spans[i], len(tags_list[i]), kinds, len(types)) for i in holding}
    eligible = np.array([i for i in holding if can[i]], dtype=np.int64)
    chosen = rng.permutation(eligible)[: round(sentence_share * len(holding))].tolist()
    noisy = [list(t) for t in tags_list]
    truth: list[dict[str, Any] | None] = [None] * len(tags_list)
    for turn, i in enumerate(chosen):
        kind = kinds[turn % len(kinds)]
        if kind not in can[i]:
            kind = can[i][int(rng.integers(len(can[i])))]
        sentence = list(all_spans[i])
        before, after = _corrupt_one(sentence, len(tags_list[i]), kind, types, rng)
        noisy[i] = tags_of(sentence, len(tags_list[i]))
        truth[i] = {"corrupted": True, "kind": kind, "before": before, "after": after, "true_tags": list(tags_list[i])}
    return noisy, truth


# ---------------------------------------------------------------------- the recipe


@dataclass(frozen=True)
class TokenRecipe:
    """How to make a token dataset's train split incomplete. The steps, in this order:

    1. ``thin`` — for each (type, share), keep that share of the train sentences holding the type;
    2. ``drop_types`` — each type removed from train (``drop_mode``: annotations set to O, or the
       sentences holding it left out); val and test keep it, a type the model never saw;
    3. noise on the spans of the train sentences still kept — n of them at this point —, each span
       changed at most once: ``round(flip_rate × m)`` of the m spans that can flip (of a type
       ``flip_mapping`` names; with no mapping all n, to a random other type), then
       ``round(delete_rate × n)`` deleted and ``round(shift_rate × n)`` shifted among the spans not
       yet changed (fewer when not enough are left that can take it).
    """

    thin: tuple[tuple[str, float], ...] = ()
    drop_types: tuple[str, ...] = ()
    drop_mode: str = "annotations"
    flip_rate: float = 0.0
    flip_mapping: tuple[tuple[str, str], ...] = ()
    delete_rate: float = 0.0
    shift_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for kind, keep in self.thin:
            if not 0.0 <= keep <= 1.0:
                problems.append(f"the share of {kind} sentences to keep must be in [0, 1], not {keep}")
        if len({k for k, _ in self.thin}) < len(self.thin):
            problems.append("each type may be thinned once")
        if self.drop_mode not in DROP_MODES:
            problems.append(f"the drop mode must be one of {', '.join(DROP_MODES)}, not {self.drop_mode!r}")
        for name in ("flip_rate", "delete_rate", "shift_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name.replace('_', ' ')} must be in [0, 1], not {getattr(self, name)}")
        if self.flip_rate + self.delete_rate + self.shift_rate > 1.0 + 1e-9:
            problems.append("the flip, delete and shift rates together must be at most 1 (each span changes once)")
        for source, target in self.flip_mapping:
            if source == target or not target:
                problems.append(f"{source} must flip to another type, not {target!r}")
            if target in self.drop_types:
                problems.append(f"{source} cannot flip to {target}, a dropped type")
        if len({s for s, _ in self.flip_mapping}) < len(self.flip_mapping):
            problems.append("each type may be mapped once")
        if problems:
            raise DataError("This token recipe cannot work: " + "; ".join(problems) + ".")

    @property
    def active(self) -> list[str]:
        """The steps that change something, in words (empty: the recipe is a copy)."""
        out = [f"{kind} sentences kept {keep:.0%}" for kind, keep in self.thin if keep < 1.0]
        if self.drop_types:
            out.append(f"dropped {', '.join(self.drop_types)} ({DROP_MODES[self.drop_mode]})")
        if self.flip_rate > 0:
            how = ", ".join(f"{s}→{t}" for s, t in self.flip_mapping) or "to a random other type"
            out.append(f"{self.flip_rate:.0%} of spans flipped ({how})")
        if self.delete_rate > 0:
            out.append(f"{self.delete_rate:.0%} of spans deleted")
        if self.shift_rate > 0:
            out.append(f"{self.shift_rate:.0%} of span boundaries shifted")
        return out

    def summary(self) -> str:
        return "simulated: " + (" · ".join(self.active) or "no change") + f" (seed {self.seed})"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["thin"] = [[k, v] for k, v in self.thin]
        d["drop_types"] = list(self.drop_types)
        d["flip_mapping"] = [[s, t] for s, t in self.flip_mapping]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TokenRecipe:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "thin" in kw:
            kw["thin"] = tuple((str(k), float(v)) for k, v in kw["thin"])
        if "drop_types" in kw:
            kw["drop_types"] = tuple(str(t) for t in kw["drop_types"])
        if "flip_mapping" in kw:
            kw["flip_mapping"] = tuple((str(s), str(t)) for s, t in kw["flip_mapping"])
        return cls(**kw)


def train_mask(split: Any, n: int) -> np.ndarray:
    """(n,) bool: the train sentences of ``split`` (codes 0/1/2 or names such as "train", "dev")."""
    codes = np.asarray(split)
    if codes.shape != (n,):
        raise DataError(f"The split has {codes.size} entries for {n} sentences: give one per sentence.")
    if codes.dtype.kind in "iub":
        return codes.astype(np.int64) == TRAIN
    names = [str(s).strip().lower() for s in codes.tolist()]
    unknown = sorted({s for s in names if s not in SPLIT_ALIASES})
    if unknown:
        raise DataError(f"Unknown split names {', '.join(map(repr, unknown))}: use train, val or test.")
    return np.array([SPLIT_ALIASES[s] == TRAIN for s in names], dtype=bool)


def run_recipe(tags_list: Sequence[Sequence[str]], split: Any, recipe: TokenRecipe, seed: int | None = None) -> Corrupted:
    """``recipe`` on the train sentences of ``split`` (``seed`` overrides ``recipe.seed``)."""
    work = _Work.of(tags_list, train_mask(split, len(tags_list)))
    rng = np.random.default_rng(recipe.seed if seed is None else seed)
    for kind, keep in recipe.thin:
        work.check_type(kind, "Thin a type")
        _thin(work, kind, keep, rng)
    for kind in recipe.drop_types:
        work.check_type(kind, "Drop a type")
        _drop(work, kind, recipe.drop_mode)
    mapping = dict(recipe.flip_mapping) or None
    for source, target in recipe.flip_mapping:
        work.check_type(source, "Flip types")
        work.check_type(target, "Flip types")
    n = len(work.pool())
    if recipe.flip_rate > 0:
        _flip(work, recipe.flip_rate, mapping, rng)
    if recipe.delete_rate > 0:
        _delete(work, recipe.delete_rate, rng, n=n)
    if recipe.shift_rate > 0:
        _shift(work, recipe.shift_rate, rng, n=n)
    return work.result()


def apply_recipe(
    tokens_list: Sequence[Sequence[str]], tags_list: Sequence[Sequence[str]], split: Any, recipe: TokenRecipe, seed: int | None = None
) -> tuple[list[list[str]], np.ndarray, list[Truth | None]]:
    """(tags, kept mask, truth) of ``recipe`` on the train sentences; val and test come back as
    they were, kept. A sentence left out (kept False) keeps its tags; its record says why
    (``removed``: "thin" or "drop")."""
    _check_pairs(tokens_list, tags_list)
    done = run_recipe(tags_list, split, recipe, seed)
    return done.tags, done.kept, done.truth


def recipe_counts(tags_list: Sequence[Sequence[str]], split: Any, recipe: TokenRecipe, seed: int | None = None) -> list[dict[str, Any]]:
    """Train mentions and sentences per type before and after ``recipe``, for a preview: one row per
    type, ``{"type", "mentions_before", "mentions_after", "sentences_before", "sentences_after"}``."""
    train = train_mask(split, len(tags_list))
    done = run_recipe(tags_list, split, recipe, seed)
    before = [spans(t) for t, m in zip(tags_list, train) if m]
    after = [spans(t) for t, m, k in zip(done.tags, train, done.kept) if m and k]

    def mentions(sentences: list[list[Span]]) -> Counter[str]:
        return Counter(k for s in sentences for k, _, _ in s)

    def holding(sentences: list[list[Span]]) -> Counter[str]:
        return Counter(k for s in sentences for k in {k for k, _, _ in s})

    mb, ma, sb, sa = mentions(before), mentions(after), holding(before), holding(after)
    types = sorted({*mb, *ma, *(k for t in tags_list for k, _, _ in spans(t))})
    return [
        {"type": t, "mentions_before": mb[t], "mentions_after": ma[t], "sentences_before": sb[t], "sentences_after": sa[t]} for t in types
    ]
