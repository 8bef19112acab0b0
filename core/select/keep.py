"""Keep x % of the train items by a score: a smaller version that trains as well, or better.

Scores (per train item, from a finished run's training dynamics, ``core.select.scores``):

- ``random``: a seeded uniform draw — the baseline every other score must beat;
- ``el2n``: the items with the highest early error (Paul et al. 2021): easy items go first;
- ``forgetting``: the most forgotten items (Toneva et al. 2019): unforgettable items go first;
- ``ambiguity``: the items whose given-label probability moved most across epochs (the data map's
  variability; Swayamdipta et al. 2020);
- ``easy_ambiguous``: the data map without its hard-to-learn corner — items ranked by variability
  after the hardest ``hard_cut`` share of each class (lowest confidence) is set aside: those are often label errors;
- ``ccs``: coverage-centric selection (Zheng et al. 2023): set aside each class's hardest ``hard_cut``
  share by EL2N, cut the rest into ``STRATA`` equal-width EL2N strata and spend the budget evenly over them
  (the smallest strata first, each taking what it has), drawing at random inside a stratum — easy,
  medium and hard items all stay represented, which the rank-based scores lose at small x.

Every score keeps each class's share of the train items (per-class quotas, largest remainders), so
a selection never thins a class more than the others; ``balance="equal"`` gives every class the same
quota instead (as many as it has, when fewer), which helps macro-F1 on a long tail. Unlabelled items,
val and test are untouched. ``kept_version`` saves the result as a new version of the dataset with
the recipe in its params (``{"keep": {...}}``), so a sweep can find its versions again.

My own module rather than a library's: DeepCore and similar pruning toolkits re-train their own
models inside; here the scores come from the run the user already trained (NumPy only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import DataError
from core.select import scores as S

if TYPE_CHECKING:
    from core.data.dataset import Dataset
    from core.store import Store

__all__ = ["CUT_SCORES", "KEEP_SCORES", "KeepRecipe", "keep_rows", "kept_dataset", "kept_version", "score_items"]

KEEP_SCORES = {
    "random": "random (the baseline)",
    "el2n": "EL2N: highest early error first",
    "forgetting": "forgetting: most forgotten first",
    "ambiguity": "ambiguity: most variable first",
    "easy_ambiguous": "data map: ambiguous and easy, hard-to-learn dropped",
    "ccs": "coverage-centric: every difficulty stratum",
}
BALANCE = ("proportional", "equal")
CUT_SCORES = ("ccs", "easy_ambiguous")  # the scores that set each class's hardest share aside first
STRATA = 50  # Zheng et al. 2023 use 50 strata
HARD_CUT = 0.1  # the hardest share dropped by ccs and easy_ambiguous (label errors sit there)


@dataclass(frozen=True)
class KeepRecipe:
    """What a kept version was made with (stored in its params)."""

    score: str = "random"
    fraction: float = 0.3  # of the labelled train items
    balance: str = "proportional"
    hard_cut: float = HARD_CUT
    seed: int = 0
    run_id: int | None = None  # the run whose dynamics scored the items (None for random)

    def __post_init__(self) -> None:
        if self.score not in KEEP_SCORES:
            raise DataError(f"score must be one of {', '.join(KEEP_SCORES)}; got {self.score!r}.")
        if not 0 < self.fraction <= 1:
            raise DataError(f"the share to keep must be in (0, 1]; got {self.fraction}.")
        if self.balance not in BALANCE:
            raise DataError(f"balance must be one of {', '.join(BALANCE)}; got {self.balance!r}.")
        if not 0 <= self.hard_cut < 1:
            raise DataError(f"the hardest share to drop must be in [0, 1); got {self.hard_cut}.")
        if self.score != "random" and self.run_id is None:
            raise DataError(f"score {self.score!r} reads a finished run's training dynamics: pick the run.")

    @property
    def words(self) -> str:
        extra = "" if self.balance == "proportional" else ", equal per class"
        by = "at random" if self.score == "random" else f"by {self.score} (run {self.run_id})"
        return f"kept {self.fraction:.0%} {by}{extra}, seed {self.seed}"


def score_items(dyn: dict[str, Any] | None, score: str) -> tuple[np.ndarray, np.ndarray]:
    """(dataset rows, per row the score's value: higher = kept first) of a run's train items.
    ``random`` needs no dynamics and is not scored here."""
    if score == "el2n" or score == "ccs":
        d = S.checked(dyn)
        return d["rows"], S.el2n(d)
    if score == "forgetting":
        d = S.checked(dyn)
        return d["rows"], S.forgetting(d)
    m = S.data_map(dyn)
    if score == "ambiguity":
        return m["row"].to_numpy(), m["variability"].to_numpy()
    if score == "easy_ambiguous":  # the least confident are set aside first by keep_rows's hard cut
        return m["row"].to_numpy(), m["variability"].to_numpy()
    raise DataError(f"no dynamics score called {score!r}.")


def _quotas(counts: np.ndarray, budget: int, balance: str) -> np.ndarray:
    """Per class how many to keep: ``budget`` split by class share (largest remainders) or evenly."""
    counts = np.asarray(counts, dtype=np.int64)
    budget = min(int(budget), int(counts.sum()))
    if balance == "equal":
        q = np.zeros_like(counts)
        left, open_ = budget, counts > 0
        while left > 0 and open_.any():
            share = max(1, left // int(open_.sum()))
            for c in np.flatnonzero(open_):
                take = min(share, counts[c] - q[c], left)
                q[c] += take
                left -= take
                if q[c] >= counts[c]:
                    open_[c] = False
                if left == 0:
                    break
        return q
    exact = counts * budget / max(int(counts.sum()), 1)
    q = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - q), kind="stable")
    q[order[: budget - int(q.sum())]] += 1
    return np.minimum(q, counts)


def _ccs_pick(values: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of ``k`` items spread evenly over ``STRATA`` equal-width strata of ``values``."""
    if k >= len(values):
        return np.arange(len(values))
    finite = np.isfinite(values)
    values = np.where(finite, values, np.min(values[finite]) if finite.any() else 0.0)
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    edges = np.linspace(lo, hi, STRATA + 1)
    stratum = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, STRATA - 1)
    members = [np.flatnonzero(stratum == s) for s in range(STRATA)]
    members = [m for m in members if len(m)]
    picked: list[np.ndarray] = []
    left = k
    for i, m in enumerate(sorted(members, key=len)):  # the smallest strata first
        take = min(len(m), left // (len(members) - i))
        picked.append(rng.choice(m, take, replace=False))
        left -= take
    return np.concatenate(picked) if picked else np.zeros(0, np.int64)


def _values(ds: Dataset, recipe: KeepRecipe, dyn: dict[str, Any] | None, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per dataset row: the score (higher kept first; -inf for a train item the run never saw) and the
    hardness the hard cut reads (NaN where it does not apply)."""
    value = np.full(len(ds), -np.inf)
    hardness = np.full(len(ds), np.nan)
    rows, v = score_items(dyn, recipe.score)
    missing = np.setdiff1d(train, rows)
    if len(missing) > len(train) // 2:
        raise DataError(
            f"run {recipe.run_id} was trained on another version: it scored {len(train) - len(missing):,} of this "
            f"version's {len(train):,} train items. Pick a run on this version."
        )
    inside = rows < len(ds)
    value[rows[inside]] = np.nan_to_num(np.asarray(v, dtype=np.float64)[inside], nan=-np.inf)
    if recipe.score == "ccs":
        hardness[rows[inside]] = value[rows[inside]]
    elif recipe.score == "easy_ambiguous":
        m = S.data_map(dyn)
        r = m["row"].to_numpy()
        ok = r < len(ds)
        hardness[r[ok]] = -m["confidence"].to_numpy()[ok]
    return value, hardness


def _pick_class(
    members: np.ndarray, q: int, recipe: KeepRecipe, value: np.ndarray, hardness: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``q`` of one class's train rows by the recipe: the hardest ``hard_cut`` share of the class set
    aside first (taken back, least hard first, only when the rest cannot fill the quota)."""
    if recipe.score == "random":
        return rng.choice(members, q, replace=False)
    hard = np.zeros(len(members), dtype=bool)
    finite = np.isfinite(hardness[members])
    cut = round(float(recipe.hard_cut * finite.sum())) if recipe.score in CUT_SCORES else 0
    if cut:
        hard[np.flatnonzero(finite)[np.argsort(-hardness[members][finite], kind="stable")[:cut]]] = True
    soft, set_aside = members[~hard], members[hard]
    if len(soft) < q:
        back = set_aside[np.argsort(hardness[set_aside], kind="stable")[: q - len(soft)]]
        return np.concatenate([soft, back])
    if recipe.score == "ccs":
        return soft[_ccs_pick(value[soft], q, rng)]
    ties = rng.random(len(soft))  # equal scores in a seeded order
    return soft[np.lexsort((ties, -value[soft]))[:q]]


def keep_rows(ds: Dataset, recipe: KeepRecipe, dyn: dict[str, Any] | None = None) -> np.ndarray:
    """The dataset rows a kept version holds, sorted: every val / test / unlabelled row and the chosen
    labelled train rows."""
    rng = np.random.default_rng(recipe.seed)
    train = np.flatnonzero((ds.split == 0) & ds.labelled)
    if len(train) == 0:
        raise DataError("this version has no labelled train items to choose from.")
    if recipe.score == "random":
        value = hardness = np.zeros(len(ds))
    else:
        value, hardness = _values(ds, recipe, dyn, train)
    labels = ds.labels[train]
    classes, counts = np.unique(labels, return_counts=True)
    quotas = _quotas(counts, round(recipe.fraction * len(train)), recipe.balance)
    chosen = [_pick_class(train[labels == c], int(q), recipe, value, hardness, rng) for c, q in zip(classes, quotas) if q > 0]
    keep = np.zeros(len(ds), dtype=bool)
    keep[np.concatenate(chosen) if chosen else np.zeros(0, np.int64)] = True
    keep |= ds.split != 0
    keep |= (ds.split == 0) & ~ds.labelled
    return np.flatnonzero(keep)


def kept_dataset(ds: Dataset, recipe: KeepRecipe, dyn: dict[str, Any] | None = None) -> Dataset:
    """``ds`` holding only the kept rows (``keep_rows``); ``meta["source_item"]`` names each row's item."""
    rows = keep_rows(ds, recipe, dyn)
    out = ds.subset(rows)
    if "source_item" not in out.meta:
        out.meta["source_item"] = ds.item_ids()[rows]
    return out


def kept_version(store: Store, version_id: int, recipe: KeepRecipe) -> int:
    """Save the kept rows of ``version_id`` as a new version with the recipe stored; returns its id."""
    from core.store.artifacts import RunFiles

    info, ds = store.version(version_id), store.load_dataset(version_id)
    dyn = None
    if recipe.score != "random":
        assert recipe.run_id is not None
        dyn = RunFiles(recipe.run_id, home=store.home).dynamics()
    out = kept_dataset(ds, recipe, dyn)
    n_train = int(((out.split == 0) & out.labelled).sum())
    return store.save_dataset(
        out,
        source=f"select:{version_id}",
        dataset_id=info.dataset_id,
        parent_id=version_id,
        kind="select",
        note=f"{recipe.words} ({n_train:,} train items)",
        params={"keep": asdict(recipe)},
    )
