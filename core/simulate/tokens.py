"""Simulated token (NER) versions: a ``TokenRecipe`` applied to a token dataset's train split, stored
as a version with the truth kept, and the token detector graded against that truth. Torch-free.

    plan = plan_tokens(ds, recipe)              # what the recipe does, for a live preview
    out = simulate_tokens(ds, recipe)           # the new Dataset, truth in sim_* meta columns
    vid = save_simulated_tokens(store, parent, recipe)
    grade_token_detector(store.load_dataset(vid), flagged)

Truth columns (never slices, see ``core.data.slices``), one value per sentence of the new version:

- ``sim_corrupted`` (bool): the recipe changed the sentence's tags;
- ``sim_kind`` (str): the kinds of change, sorted and joined by ",": ``drop`` (an annotation of a
  dropped type set to O), ``swap`` (type changed), ``delete`` (span set to O), ``shift`` (one end
  moved); "" when untouched;
- ``sim_true_tags`` (str): the tags before the recipe as a JSON list where they changed, "" where
  they did not (``true_tags`` reads them back).

``source_item`` is the parent's row, as after a cleaning, so sentences keep their numbers. Sentences
the recipe leaves out (thinned, or dropped with their type) are not in the new version; val and test
sentences come through as they were. The recipe is kept in the version's ``params`` under
``"token_recipe"`` (a classification recipe is under ``"recipe"``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.data.dataset import Dataset
from core.errors import DataError
from core.simulate.grade import Grade, grade
from core.tokens.corrupt import TRAIN, TokenRecipe, Truth, apply_recipe
from core.tokens.data import token_dataset
from core.tokens.spans import spans

if TYPE_CHECKING:
    from core.store.database import Store

PARAMS_KEY = "token_recipe"
KINDS = ("drop", "swap", "delete", "shift")  # the recipe's kinds of change, in the order it makes them
KIND_WORDS = {
    "drop": "annotation of a dropped type removed",
    "swap": "type flipped",
    "delete": "span deleted",
    "shift": "boundary shifted",
}
# what the detector would call each kind of change (``core.tokens.detect.SentenceIssue.kinds``)
DETECTED_AS = {"drop": "missed span", "swap": "type", "delete": "missed span", "shift": "boundary"}
REMOVED_WORDS = {"thin": "thinned", "drop": "dropped with their type"}


def _check(ds: Dataset) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    if ds.modality != "tokens" or ds.tags is None:
        raise DataError(f"{ds.name} is a {ds.modality} dataset: token recipes need sentences with tags.")
    return list(ds.items), list(ds.tags)


@dataclass
class TokenPlan:
    """What ``recipe`` does to a token dataset: the new ``tags`` of every sentence, which stay
    (``kept``), one truth record per sentence (None when untouched; see ``core.tokens.corrupt``),
    and the train split's mentions and sentences per type before and after (``counts``)."""

    tags: list[list[str]]
    kept: np.ndarray  # (n,) bool
    truth: list[Truth | None]
    train: np.ndarray  # (n,) bool
    counts: pd.DataFrame  # type, mentions_before, mentions_after, sentences_before, sentences_after

    @property
    def changed(self) -> np.ndarray:
        """(n,) bool: a kept sentence whose tags the recipe changed."""
        return np.array([t is not None and bool(t["changes"]) for t in self.truth], dtype=bool) & self.kept

    def kinds(self, i: int) -> list[str]:
        """The kinds of change made to sentence ``i``, sorted ([] when none)."""
        record = self.truth[i]
        return sorted({c["kind"] for c in record["changes"]}) if record is not None else []

    def change_counts(self) -> dict[str, int]:
        """Spans changed per kind (``KINDS``), over the kept sentences."""
        counts = Counter(c["kind"] for i, t in enumerate(self.truth) if t is not None and self.kept[i] for c in t["changes"])
        return {k: int(counts[k]) for k in KINDS}

    def removed_counts(self) -> dict[str, int]:
        """Train sentences left out, by why: "thin" or "drop"."""
        counts = Counter(t["removed"] for t in self.truth if t is not None and t["removed"])
        return {k: int(counts[k]) for k in REMOVED_WORDS}


def _counts(before: list[tuple[str, ...]], after: list[list[str]], train: np.ndarray, kept: np.ndarray) -> pd.DataFrame:
    sb = [spans(t) for t, m in zip(before, train) if m]
    sa = [spans(t) for t, m, k in zip(after, train, kept) if m and k]
    mb, ma = Counter(k for s in sb for k, _, _ in s), Counter(k for s in sa for k, _, _ in s)
    hb = Counter(k for s in sb for k in {k for k, _, _ in s})
    ha = Counter(k for s in sa for k in {k for k, _, _ in s})
    types = sorted({k for t in before for k, _, _ in spans(t)})
    return pd.DataFrame(
        {
            "type": types,
            "mentions_before": [mb[t] for t in types],
            "mentions_after": [ma[t] for t in types],
            "sentences_before": [hb[t] for t in types],
            "sentences_after": [ha[t] for t in types],
        },
        columns=["type", "mentions_before", "mentions_after", "sentences_before", "sentences_after"],
    )


def plan_tokens(ds: Dataset, recipe: TokenRecipe) -> TokenPlan:
    """What ``recipe`` does to ``ds`` (deterministic under ``recipe.seed``); ``DataError`` when it
    names a type the data does not hold."""
    tokens, tags = _check(ds)
    new, kept, truth = apply_recipe(tokens, tags, ds.split, recipe)
    train = ds.split == TRAIN
    return TokenPlan(tags=new, kept=np.asarray(kept, dtype=bool), truth=truth, train=train, counts=_counts(tags, new, train, kept))


def simulate_tokens(ds: Dataset, recipe: TokenRecipe, plan: TokenPlan | None = None) -> Dataset:
    """The new token dataset ``recipe`` makes of ``ds``, with the truth in ``sim_*`` meta columns
    (``plan``: the recipe's plan when the caller has it)."""
    plan = plan if plan is not None else plan_tokens(ds, recipe)
    rows = np.flatnonzero(plan.kept)
    if not len(rows):
        raise DataError("This recipe leaves no sentence at all: keep more.")
    meta = ds.meta.copy()
    if "source_item" not in meta.columns:
        meta["source_item"] = np.arange(len(ds), dtype=np.int64)
    changed = plan.changed
    kinds, before = [""] * len(ds), [""] * len(ds)
    for i in np.flatnonzero(changed).tolist():
        record = plan.truth[i]
        assert record is not None  # a changed sentence has its record
        kinds[i], before[i] = ",".join(plan.kinds(i)), json.dumps(list(record["true_tags"]))
    meta = meta.assign(sim_corrupted=changed, sim_kind=kinds, sim_true_tags=before)
    return token_dataset(
        ds.name,
        [ds.items[r] for r in rows],
        [plan.tags[r] for r in rows],
        ds.split[rows],
        meta.iloc[rows].reset_index(drop=True),
    )


def save_simulated_tokens(store: Store, version_id: int, recipe: TokenRecipe, *, dataset: Dataset | None = None) -> int:
    """Apply ``recipe`` to token version ``version_id`` and store the result as its child (kind
    ``simulate``, the recipe in ``params["token_recipe"]``, the truth in ``sim_*`` columns)."""
    if not recipe.active:
        raise DataError("This recipe changes nothing: pick a step first.")
    info = store.version(version_id)
    ds = dataset if dataset is not None else store.load_dataset(version_id)
    plan = plan_tokens(ds, recipe)
    out = simulate_tokens(ds, recipe, plan)
    return store.save_dataset(
        out,
        source=info.source,
        dataset_id=info.dataset_id,
        parent_id=version_id,
        kind="simulate",
        note=recipe.summary(),
        params={PARAMS_KEY: recipe.to_dict(), "changed": plan.change_counts(), "left_out": plan.removed_counts()},
    )


def token_recipe_of(store: Store, version_id: int) -> TokenRecipe | None:
    """The token recipe a simulated version was made with, or None for any other version."""
    info = store.version(version_id)
    return TokenRecipe.from_dict(info.params[PARAMS_KEY]) if info.kind == "simulate" and PARAMS_KEY in info.params else None


def token_recipe_source(store: Store, version_id: int) -> tuple[int, TokenRecipe | None]:
    """(the version recipes start from, the recipe ``version_id`` was made with): a simulated
    version's clean parent and its recipe, else ``version_id`` itself and None."""
    recipe = token_recipe_of(store, version_id)
    parent = store.version(version_id).parent_id
    return (int(parent) if recipe is not None and parent is not None else version_id), recipe


# ---------------------------------------------------------------------- the truth, read back


def has_token_truth(ds: Dataset) -> bool:
    """The version was simulated with changed tags: it knows which sentences are wrong."""
    return ds.modality == "tokens" and "sim_corrupted" in ds.meta.columns and bool(ds.meta["sim_corrupted"].any())


def true_tags(ds: Dataset) -> list[tuple[str, ...]]:
    """Every sentence's tags before the recipe (its own where the recipe left them)."""
    if ds.tags is None:
        raise DataError(f"{ds.name} is not a token dataset.")
    stored = ds.meta["sim_true_tags"].tolist() if "sim_true_tags" in ds.meta.columns else [""] * len(ds)
    return [tuple(json.loads(s)) if isinstance(s, str) and s else tuple(t) for s, t in zip(stored, ds.tags)]


def sentence_kinds(ds: Dataset) -> list[set[str]]:
    """The kinds of change the recipe made to each sentence (empty sets where none)."""
    stored = ds.meta["sim_kind"].tolist() if "sim_kind" in ds.meta.columns else [""] * len(ds)
    return [set(str(s).split(",")) if isinstance(s, str) and s else set() for s in stored]


# ---------------------------------------------------------------------- grading the detector


@dataclass(frozen=True)
class KindGrade:
    """The detector against one kind of change: recall over that kind's sentences, precision as if
    it were the only kind (the flags among the clean sentences and that kind's), and the share of the
    caught ones whose suggestion names it (``named``; NaN when unknown)."""

    kind: str
    grade: Grade
    named: float


@dataclass(frozen=True)
class TokenGrade:
    overall: Grade  # sentence level over the train sentences
    kinds: tuple[KindGrade, ...]  # the kinds present, in ``KINDS`` order


def grade_token_detector(ds: Dataset, flagged: Any, suspected: list[list[str]] | None = None) -> TokenGrade:
    """The detector's ``flagged`` sentences (bool, one per sentence of ``ds``) of a simulated token
    version against its truth, sentence level, over the train sentences (where the recipe works).
    ``suspected``: the detector's kinds per sentence (``SentenceIssue.kinds``, [] where not
    flagged), to say whether it named each caught change right (``DETECTED_AS``)."""
    if "sim_corrupted" not in ds.meta.columns:
        raise DataError(f"{ds.name} was not simulated with a token recipe: there is no truth to grade against.")
    f = np.asarray(flagged, dtype=bool)
    if f.shape != (len(ds),):
        raise DataError(f"{f.size} flags for {len(ds)} sentences: give one per sentence.")
    corrupted = ds.meta["sim_corrupted"].to_numpy(dtype=bool)
    train = ds.split == TRAIN
    overall = grade(f, corrupted, among=train)
    kinds = sentence_kinds(ds)
    out = []
    for kind in KINDS:
        mine = np.array([kind in k for k in kinds], dtype=bool) & corrupted
        if not (mine & train).any():
            continue
        g = grade(f, mine, among=train & (mine | ~corrupted))
        named = float("nan")
        if suspected is not None:
            caught = np.flatnonzero(mine & f & train)
            if len(caught):
                named = float(np.mean([DETECTED_AS[kind] in suspected[i] for i in caught]))
        out.append(KindGrade(kind, g, named))
    return TokenGrade(overall, tuple(out))
