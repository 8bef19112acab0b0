"""Reviewing a token (NER) diagnosis: a cleaning plan of sentences (keep, relabel with new tags, drop)
saved as a new version with undo, the review queue, bulk decisions by suspected kind and score, and
the figures and sentences the Diagnose page shows. No I/O but the store's; no streamlit; no torch.

A ``TokenCleaningPlan`` is to sentences what ``core.diagnose.cleaning.CleaningPlan`` is to items:
decisions by row of the version under review, the last one winning; a relabelled sentence carries
its whole new tag sequence (the detector's suggestion, or the reviewer's edit). Saving writes a
child version (kind ``clean``) whose ``params`` hold every decision — the rows dropped, the new
tags of the rows relabelled, the rows kept, and the identities (``source_item``) of every sentence
reviewed — so an undone cleaning gives its reviews back (``undo_token_cleaning``) and later versions
do not ask about a reviewed sentence again (``starting_token_plan``).

What the queue needs per sentence is worked out once per diagnosis (``TokenFindings``); a click only
masks arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from core.data.dataset import SPLITS, Dataset, item_ref
from core.data.overview import Figure
from core.diagnose.cleaning import Decisions, reviewed_before, undo
from core.errors import DataError
from core.tokens.data import token_dataset
from core.tokens.spans import spans, tags_of

if TYPE_CHECKING:
    from core.diagnose.tokens import TokenDiagnosis
    from core.store.database import Store

ACTIONS = ("keep", "relabel", "drop")
# the detector's kinds of suggested change (``core.tokens.detect.SentenceIssue.kinds``), in words
SUSPECTED = {"type": "wrong type", "missed span": "missed span", "spurious span": "spurious span", "boundary": "boundary"}
SUSPECTED_NOTES = {
    "type": "suspects whose suggestion gives a span another type",
    "missed span": "suspects whose suggestion adds a span the tags miss",
    "spurious span": "suspects whose suggestion removes a span",
    "boundary": "suspects whose suggestion moves a span's boundary",
}
FLAGGED_FIRST = "flagged, most suspicious first"
LOWEST_SCORE_FIRST = "all sentences, lowest score first"
ORDERS = [FLAGGED_FIRST, LOWEST_SCORE_FIRST]
MODALITY = "tokens"  # in a token cleaning's params, so a reader knows which plan it holds


# ---------------------------------------------------------------------- the plan


@dataclass
class TokenCleaningPlan(Decisions):
    """Decisions by sentence (row of the version under review). ``keep`` records a reviewed sentence
    that stays as it is; ``relabel`` its new tags (IOB2, one per token)."""

    drop: set[int] = field(default_factory=set)
    relabel: dict[int, tuple[str, ...]] = field(default_factory=dict)
    keep: set[int] = field(default_factory=set)

    def decide(self, item: int, action: str, tags: Sequence[str] | None = None) -> None:
        """Record ``action`` ("keep", "relabel" or "drop") for sentence ``item``; the last wins."""
        item = int(item)
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; use keep, relabel or drop.")
        if action == "relabel" and tags is None:
            raise ValueError("relabel needs the sentence's new tags: accept the suggestion or edit a span.")
        self.drop.discard(item)
        self.relabel.pop(item, None)
        self.keep.discard(item)
        if action == "drop":
            self.drop.add(item)
        elif action == "relabel":
            assert tags is not None
            self.relabel[item] = tuple(str(t) for t in tags)
        else:
            self.keep.add(item)

    def tags(self, item: int, ds: Dataset) -> tuple[str, ...]:
        """Sentence ``item``'s tags under the plan: its new tags when relabelled, else its own."""
        assert ds.tags is not None
        return self.relabel.get(int(item), tuple(ds.tags[int(item)]))

    def summary(self) -> str:
        n = len(self.drop)
        return f"dropped {n:,} sentence{'' if n == 1 else 's'}, relabelled {len(self.relabel):,}"

    def copy(self) -> TokenCleaningPlan:
        return TokenCleaningPlan(set(self.drop), dict(self.relabel), set(self.keep))

    def to_params(self, ds: Dataset | None = None) -> dict:
        """What a saved version records of its plan (rows of the parent), and with ``ds`` the
        identities of every sentence reviewed — kept or relabelled (``reviewed_before``)."""
        params: dict = {
            "modality": MODALITY,
            "drop": sorted(self.drop),
            "retag": {str(k): list(v) for k, v in sorted(self.relabel.items())},
            "relabelled": len(self.relabel),
            "kept": len(self.keep),
            "keep": sorted(self.keep),
        }
        if ds is not None:
            params["reviewed_ids"] = self.reviewed_ids(ds)
        return params

    @classmethod
    def from_params(cls, params: Mapping) -> TokenCleaningPlan:
        return cls(
            drop={int(i) for i in params.get("drop", ())},
            relabel={int(k): tuple(str(t) for t in v) for k, v in params.get("retag", {}).items()},
            keep={int(i) for i in params.get("keep", ())},
        )

    def apply(self, ds: Dataset) -> Dataset:
        """The cleaned token dataset: relabelled sentences with their new tags, dropped ones gone,
        each sentence's row in the parent kept in ``source_item``; labels made anew (each sentence's
        rarest type, ``core.tokens.data.token_dataset``)."""
        if ds.tags is None:
            raise DataError(f"{ds.name} is not a token dataset: use a cleaning plan of items.")
        n = len(ds)
        bad = sorted(i for i in (*self.drop, *self.relabel) if not 0 <= i < n)
        if bad:
            raise DataError(f"Sentences {bad[:5]} are not in this version (it has {n:,}); rebuild the plan.")
        tags = list(ds.tags)
        for item, new in self.relabel.items():
            if len(new) != len(tags[item]):
                raise DataError(f"Sentence {item} has {len(tags[item])} tokens but its new tags are {len(new)}: give one tag per token.")
            tags[item] = tuple(tags_of(spans(new), len(new)))  # read strictly: an I- that opens nothing is O
        keep = np.ones(n, dtype=bool)
        keep[sorted(self.drop)] = False
        index = np.flatnonzero(keep)
        if not len(index):
            raise DataError("This plan drops every sentence: keep some.")
        meta = ds.meta.copy()
        if "source_item" not in meta.columns:
            meta["source_item"] = np.arange(n, dtype=np.int64)
        return token_dataset(
            ds.name, [ds.items[i] for i in index], [tags[i] for i in index], ds.split[index], meta.iloc[index].reset_index(drop=True)
        )


def save_token_cleaning(store: Store, version_id: int, plan: TokenCleaningPlan, *, dataset: Dataset | None = None) -> int:
    """Apply ``plan`` to token version ``version_id`` and store the result as its child (kind
    ``clean``, every decision in ``params``); return the new id."""
    if plan.n_changes == 0:
        raise DataError("The plan changes nothing yet: relabel or drop some suspect sentences first.")
    info = store.version(version_id)
    ds = dataset if dataset is not None else store.load_dataset(version_id)
    cleaned = plan.apply(ds)
    return store.save_dataset(
        cleaned,
        source=info.source,
        dataset_id=info.dataset_id,
        parent_id=version_id,
        kind="clean",
        note=plan.summary(),
        params=plan.to_params(ds),
    )


def is_token_cleaning(params: Mapping) -> bool:
    return params.get("modality") == MODALITY


def saved_token_plan(store: Store, version_id: int) -> TokenCleaningPlan:
    """The plan token version ``version_id`` was cleaned with, in its parent's rows."""
    info = store.version(version_id)
    if info.kind != "clean" or info.parent_id is None or not is_token_cleaning(info.params):
        raise DataError(f"v{version_id} is not a cleaned token version: it was saved from no sentence plan.")
    return TokenCleaningPlan.from_params(info.params)


def undo_token_cleaning(store: Store, version_id: int) -> tuple[int, TokenCleaningPlan]:
    """Archive a cleaned token version (files and rows stay) and give back its parent's id and the
    plan it was saved from: the parent's reviews come back as they were."""
    plan = saved_token_plan(store, version_id)
    return undo(store, version_id), plan


def starting_token_plan(store: Store, version_id: int, ds: Dataset) -> TokenCleaningPlan:
    """A new plan for ``version_id`` that marks as kept the sentences reviewed in the versions it
    comes from."""
    return TokenCleaningPlan(keep=reviewed_before(store, version_id, ds))


def plan_line(version_id: int, plan: TokenCleaningPlan, inherited: int) -> str:
    """The plan bar's sentence; ``inherited`` sentences were reviewed in the versions this one comes from."""
    return f"**Cleaning plan** for v{version_id}: {plan.summary()}, {len(plan.keep):,} reviewed and kept" + (
        f" ({inherited:,} reviewed in the versions v{version_id} comes from)." if inherited else "."
    )


def plan_is_fresh(plan: TokenCleaningPlan, inherited: int) -> bool:
    """Nothing decided beyond what the version inherited: clearing would change nothing."""
    return plan.n_changes + len(plan.keep) == inherited


# ---------------------------------------------------------------------- what was found, per sentence


@dataclass(frozen=True)
class TokenFindings:
    """The diagnosis per sentence of one version (m sentences), worked out once."""

    score: np.ndarray  # (m,) sentence score, lower = more suspicious
    flagged: np.ndarray  # (m,) bool
    rank: np.ndarray  # flagged sentences, most suspicious first
    by_score: np.ndarray  # every sentence, lowest score first
    kinds: Mapping[str, np.ndarray]  # suspected kind → (m,) bool (flagged sentences only)
    suggested: Mapping[int, tuple[str, ...]]  # flagged sentence → its suggested tags
    suspects: Mapping[int, tuple[int, ...]]  # flagged sentence → its suspect token positions
    has_entity: np.ndarray  # (m,) bool: the given tags hold an entity
    split: np.ndarray  # (m,) split codes

    @property
    def m(self) -> int:
        return len(self.score)

    def suggestion(self, i: int, ds: Dataset) -> tuple[str, ...]:
        """The detector's tags for sentence ``i`` (its own where it is not flagged)."""
        assert ds.tags is not None
        return self.suggested.get(int(i), tuple(ds.tags[int(i)]))

    def changes(self, i: int, ds: Dataset) -> bool:
        """The suggestion differs from the given tags."""
        assert ds.tags is not None
        return self.suggestion(i, ds) != tuple(ds.tags[int(i)])


def token_findings(d: TokenDiagnosis, ds: Dataset) -> TokenFindings:
    """The ``TokenFindings`` of diagnosis ``d`` of token dataset ``ds``."""
    if ds.tags is None or d.n_sentences != len(ds):
        raise DataError("This diagnosis is of another version: diagnose this one.")
    iss = d.issues
    m = len(ds)
    kinds = {k: np.zeros(m, dtype=bool) for k in SUSPECTED}
    for issue in iss.issues:
        for k in issue.kinds:
            if k in kinds:
                kinds[k][issue.sentence] = True
    score = np.asarray(iss.sentence_score, dtype=np.float64)
    return TokenFindings(
        score=score,
        flagged=np.asarray(iss.is_issue, dtype=bool),
        rank=np.asarray([i.sentence for i in iss.issues], dtype=np.int64),
        by_score=np.argsort(score, kind="stable"),
        kinds=kinds,
        suggested={i.sentence: tuple(i.suggested) for i in iss.issues},
        suspects={i.sentence: tuple(i.positions) for i in iss.issues},
        has_entity=np.array([bool(spans(t)) for t in ds.tags], dtype=bool),
        split=np.asarray(ds.split),
    )


def headline(f: TokenFindings) -> list[Figure]:
    """The figures above the review: suspects, their share of the sentences holding an entity,
    and how many of them the detector suspects of each kind (a sentence may be of several)."""
    n = int(f.flagged.sum())
    entity = int(f.has_entity.sum())
    among = int((f.flagged & f.has_entity).sum())
    out = [
        Figure("Suspect sentences", f"{n:,}", f"{n / max(f.m, 1):.1%} of the {f.m:,} sentences (every split)"),
        Figure(
            "Of the entity sentences",
            f"{among / max(entity, 1):.1%}",
            f"{among:,} of the {entity:,} sentences holding an entity are suspects; {n - among:,} suspects hold none (a missed span)",
        ),
    ]
    for kind, words in SUSPECTED.items():
        out.append(Figure(words.capitalize(), f"{int(f.kinds[kind].sum()):,}", SUSPECTED_NOTES[kind]))
    return out


def headline_words(f: TokenFindings) -> str:
    return (
        "A sentence is flagged when a token's given tag is confidently outvoted by another (out-of-fold probe on MiniLM "
        "word vectors, the other occurrences of the same word, per-tag calibration, span rules); as many sentences are "
        "flagged as hold such a token. Its score is its least supported token's, in [0, 1]: low means the data "
        "disagrees with a tag."
    )


# ---------------------------------------------------------------------- the queue


def review_queue(
    f: TokenFindings,
    plan: TokenCleaningPlan,
    *,
    order: str,
    kinds: Sequence[str] = (),
    splits: Sequence[int] = (),
    hide_reviewed: bool = True,
) -> np.ndarray:
    """The sentences to review, in order: the flagged ones most suspicious first (``FLAGGED_FIRST``)
    or every sentence by rising score; only those suspected of any of ``kinds`` (all when empty) and
    in ``splits`` (all when empty); without the reviewed ones if asked."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; use one of {ORDERS}.")
    queue = f.rank if order == FLAGGED_FIRST else f.by_score
    if kinds:
        mask = np.zeros(f.m, dtype=bool)
        for k in kinds:
            mask |= f.kinds[k]
        queue = queue[mask[queue]]
    if splits:
        queue = queue[np.isin(f.split[queue], list(splits))]
    if hide_reviewed:
        queue = queue[~plan.decided_mask(f.m)[queue]]
    return np.asarray(queue, dtype=np.int64)


def sentence_caption(ds: Dataset, f: TokenFindings, i: int) -> str:
    """'#12 · train · score 0.03 · suspected: wrong type, boundary'."""
    kinds = [w for k, w in SUSPECTED.items() if f.kinds[k][i]]
    flagged = f"suspected: {', '.join(kinds)}" if kinds else ("flagged" if f.flagged[i] else "not flagged")
    return f"{item_ref(ds, i)} · score {f.score[i]:.2f} · {flagged}"


def split_words(codes: Sequence[int]) -> str:
    return ", ".join(SPLITS[int(c)] for c in codes)


# ---------------------------------------------------------------------- bulk decisions


@dataclass(frozen=True)
class TokenBulkFilter:
    """Which flagged sentences a bulk decision touches: suspected of any of ``kinds`` (every kind
    when empty), with a score in ``score`` (both ends included), only the open ones (no decision yet)
    unless ``open_only`` is off."""

    kinds: tuple[str, ...] = ()
    score: tuple[float, float] = (0.0, 1.0)
    open_only: bool = True

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in SUSPECTED]
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; pick from {', '.join(SUSPECTED)}.")
        lo, hi = self.score
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"score range {self.score} must satisfy 0 ≤ low ≤ high ≤ 1.")


def bulk_items(f: TokenFindings, flt: TokenBulkFilter, plan: TokenCleaningPlan) -> np.ndarray:
    """The flagged sentences (ascending) that ``flt`` picks."""
    mask = f.flagged.copy()
    if flt.kinds:
        anyof = np.zeros(f.m, dtype=bool)
        for k in flt.kinds:
            anyof |= f.kinds[k]
        mask &= anyof
    lo, hi = flt.score
    mask &= (f.score >= lo) & (f.score <= hi)
    if flt.open_only:
        mask &= ~plan.decided_mask(f.m)
    return np.flatnonzero(mask)


def bulk_targets(f: TokenFindings, items: np.ndarray, action: str, ds: Dataset) -> np.ndarray:
    """The ``items`` that ``action`` changes: all of them for drop and keep; for relabel those whose
    suggested tags differ from their given tags."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; use {', '.join(ACTIONS)}.")
    items = np.asarray(items, dtype=np.int64)
    if action != "relabel":
        return items
    return np.asarray([i for i in items.tolist() if f.changes(i, ds)], dtype=np.int64)


def bulk_words(f: TokenFindings, items: np.ndarray, action: str, plan: TokenCleaningPlan, ds: Dataset) -> str:
    """What a bulk ``action`` on ``items`` will do, said before it is applied."""
    targets = bulk_targets(f, items, action, ds)
    verb = {"drop": "Drop", "relabel": "Relabel", "keep": "Keep"}[action]
    what = {"relabel": " to the tags the detector suggests for each", "keep": " as they are", "drop": ""}[action]
    counts = [f"{int(f.kinds[k][targets].sum()):,} {w}" for k, w in SUSPECTED.items() if f.kinds[k][targets].any()]
    words = f"**{verb} {len(targets):,} sentences**{what}" + (f" (suspected: {', '.join(counts)})" if counts else "") + "."
    skipped = len(items) - len(targets)
    if skipped:
        words += f" {skipped:,} of the {len(items):,} matched are left alone: the suggestion is their own tags."
    replaced = int(plan.decided_mask(f.m)[targets].sum()) if len(targets) else 0
    if replaced:
        words += f" {replaced:,} of them had a decision already; this one replaces it."
    return words


def apply_bulk(plan: TokenCleaningPlan, f: TokenFindings, items: np.ndarray, action: str, ds: Dataset) -> int:
    """Decide ``action`` for every sentence ``bulk_targets`` keeps (relabel: to its suggestion);
    return how many."""
    targets = bulk_targets(f, items, action, ds)
    for i in targets.tolist():
        plan.decide(i, action, f.suggestion(i, ds) if action == "relabel" else None)
    return len(targets)


def stage_words(seconds: Mapping[str, float]) -> str:
    return "Stage times: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()) + " · word vectors from MiniLM"
