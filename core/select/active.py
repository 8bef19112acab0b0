"""Label next: which unlabelled items to label, and how much a label is worth.

- ``propose``: k items of a pool by **margin** (smallest gap between the two likeliest classes),
  **entropy** (the most uncertain answer), **k-center** coverage (greedy farthest-first on the
  embeddings, Sener & Savarese 2018: each pick is the pool item farthest from everything labelled
  or picked) or **random**. The uncertainty scores come from a logistic regression on the
  standardised embeddings of the labelled items — the project's linear probe, refitted in a second
  rather than a training run per round. **Diverse margin** (Zhdanov 2019, "diverse mini-batch
  active learning"): the ``DIVERSE_PREFILTER`` × k closest calls by margin, clustered into k groups
  by k-means weighted by how close each call is, and the candidate nearest each group's centre —
  a batch of close calls that are not all the same close call.
- ``rounds``: the loop, simulated on items whose labels are known (hidden until "bought"): start
  from a seeded, class-stratified handful, buy k labels per round by a strategy, refit, score on a
  fixed evaluation set; accuracy and macro-F1 against labels spent, for the strategy and for random
  picks from the same start.
- ``labels_to_reach``: how many labels a curve needed to reach another curve's final accuracy.
- ``labelled_version``: the labels given in the page's queue saved as a new version (the pool items
  get their classes; nothing else changes).

My own loop rather than modAL's or scikit-activeml's: both wrap an sklearn estimator the same way
in more code, pin older sklearn versions, and neither draws the random baseline from the same start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.errors import DataError

if TYPE_CHECKING:
    from core.store import Store

__all__ = ["STRATEGIES", "fit_probe", "labelled_from_target", "labelled_version", "labels_to_reach", "propose", "rounds"]

STRATEGIES = {
    "margin": "margin: the closest call between two classes",
    "entropy": "entropy: the most uncertain answer",
    "diverse_margin": "diverse margin: close calls spread over the embedding space (k-means over the closest calls)",
    "kcenter": "k-center: the items farthest from everything labelled",
    "random": "random picks (the baseline)",
}


def fit_probe(x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> Any:
    """A standardised logistic regression on labelled embeddings (``predict_proba`` over ``classes_``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y)) < 2:
        raise DataError("label items of at least two classes first: a model of one class cannot say what it is unsure of.")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000, random_state=seed))
    return model.fit(x, y)


DIVERSE_PREFILTER = 10  # diverse margin clusters the 10·k closest calls (Zhdanov 2019 uses β = 10)


def _diverse(x_pool: np.ndarray, closeness: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Positions of ``k`` picks: the ``DIVERSE_PREFILTER``·k items with the largest ``closeness``
    clustered by k-means weighted by it, the candidate nearest each centre, the closest call first."""
    from sklearn.cluster import KMeans

    order = np.argsort(-closeness, kind="stable")
    cand = order[: min(len(order), DIVERSE_PREFILTER * k)]
    if len(cand) <= k:
        return cand[:k]
    z = x_pool[cand]
    z = (z - z.mean(axis=0)) / (z.std(axis=0) + 1e-12)  # standardised over the candidates, as the probe standardises
    km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(z, sample_weight=closeness[cand] - closeness[cand].min() + 1e-6)
    picks: list[int] = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if len(members):
            near = members[np.argmin(((z[members] - km.cluster_centers_[c]) ** 2).sum(axis=1))]
            picks.append(int(cand[near]))
    taken = set(picks)
    rest = [int(i) for i in cand if int(i) not in taken]  # an empty cluster's place: the next closest call
    picks += rest[: k - len(picks)]
    return np.asarray(sorted(picks, key=lambda i: -closeness[i]), dtype=np.int64)


def _kcenter(x_pool: np.ndarray, x_labelled: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy farthest-first: positions in the pool of ``k`` picks."""
    pool = x_pool.astype(np.float32)
    if len(x_labelled):
        lab = x_labelled.astype(np.float32)
        dist = np.full(len(pool), np.inf, dtype=np.float32)
        for i in range(0, len(lab), 1024):  # bounded memory: pool × 1,024 at a time
            block = lab[i : i + 1024]
            d = (pool**2).sum(1)[:, None] - 2 * pool @ block.T + (block**2).sum(1)[None, :]
            dist = np.minimum(dist, d.min(axis=1))
    else:
        dist = np.full(len(pool), np.inf, dtype=np.float32)
        first = int(rng.integers(len(pool)))
        dist = np.minimum(dist, ((pool - pool[first]) ** 2).sum(1))
        dist[first] = -1
    picks: list[int] = [] if len(x_labelled) else [first]
    while len(picks) < k:
        j = int(np.argmax(dist))
        picks.append(j)
        dist = np.minimum(dist, ((pool - pool[j]) ** 2).sum(1))
        dist[picks] = -1
    return np.asarray(picks[:k], dtype=np.int64)


def propose(
    strategy: str, x_pool: np.ndarray, k: int, *, x_labelled: np.ndarray | None = None, y_labelled: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:  # fmt: skip
    """Positions in ``x_pool`` of the ``k`` items to label next, the most wanted first."""
    if strategy not in STRATEGIES:
        raise DataError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}.")
    x_pool = np.asarray(x_pool, dtype=np.float64)
    k = min(int(k), len(x_pool))
    if k <= 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    if strategy == "random":
        return rng.choice(len(x_pool), k, replace=False)
    x_lab = np.zeros((0, x_pool.shape[1])) if x_labelled is None else np.asarray(x_labelled, dtype=np.float64)
    if strategy == "kcenter":
        return _kcenter(x_pool, x_lab, k, rng)
    if y_labelled is None or len(x_lab) == 0:
        raise DataError(f"{strategy} needs a few labelled items to fit a model on; label some at random (or by k-center) first.")
    p = fit_probe(x_lab, np.asarray(y_labelled), seed=seed).predict_proba(x_pool)
    if strategy in ("margin", "diverse_margin"):
        top = np.sort(p, axis=1)[:, -2:] if p.shape[1] > 1 else np.c_[np.zeros(len(p)), p]
        want = -(top[:, 1] - top[:, 0])
        if strategy == "diverse_margin":
            return _diverse(x_pool, want + 1e-9 * rng.random(len(p)), k, seed)
    else:
        want = -(p * np.log(np.clip(p, 1e-12, 1))).sum(1)
    ties = rng.random(len(p))
    return np.lexsort((ties, -want))[:k]


def _stratified_start(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` positions with every class present (at least one each when n allows), else at random."""
    classes = np.unique(y)
    first = [rng.choice(np.flatnonzero(y == c)) for c in classes][:n]
    rest = np.setdiff1d(np.arange(len(y)), first)
    more = rng.choice(rest, max(0, n - len(first)), replace=False)
    return np.concatenate([np.asarray(first, np.int64), more.astype(np.int64)])


def rounds(
    x: np.ndarray, y: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray, *, strategy: str, start: int = 100, k: int = 100,
    n_rounds: int = 10, seed: int = 0, progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """The labelling loop on known labels: one row per (picker, round) — ``picker`` (the strategy or
    "random"), ``labels``, ``accuracy``, ``macro_f1`` on the evaluation set. Both pickers start from
    the same seeded, class-stratified ``start`` items."""
    from sklearn.metrics import f1_score

    x, x_eval = np.asarray(x, dtype=np.float64), np.asarray(x_eval, dtype=np.float64)
    y, y_eval = np.asarray(y), np.asarray(y_eval)
    if start + k * n_rounds > len(x):
        raise DataError(f"the pool holds {len(x):,} items: {start} to start and {n_rounds} rounds of {k} need more. Lower k or the rounds.")
    rng = np.random.default_rng(seed)
    first = _stratified_start(y, start, rng)
    pickers = [strategy] if strategy == "random" else [strategy, "random"]
    rows: list[dict] = []
    total, done = len(pickers) * (n_rounds + 1), 0
    for picker in pickers:
        have = np.zeros(len(x), dtype=bool)
        have[first] = True
        for r in range(n_rounds + 1):
            model = fit_probe(x[have], y[have], seed=seed)
            pred = model.predict(x_eval)
            rows.append(
                {
                    "picker": picker,
                    "round": r,
                    "labels": int(have.sum()),
                    "accuracy": float((pred == y_eval).mean()),
                    "macro_f1": float(f1_score(y_eval, pred, average="macro", labels=np.unique(y_eval), zero_division=0)),
                }
            )
            done += 1
            if progress is not None:
                progress(done, total)
            if r == n_rounds:
                break
            pool = np.flatnonzero(~have)
            pick = propose(picker, x[pool], k, x_labelled=x[have], y_labelled=y[have], seed=seed * 1000 + r)
            have[pool[pick]] = True
    return pd.DataFrame(rows)


def labels_to_reach(curve: pd.DataFrame, target: float, metric: str = "accuracy") -> int | None:
    """The fewest labels at which ``curve`` (rows of one picker) reached ``target``; None if never."""
    hit = curve[curve[metric] >= target - 1e-12].sort_values("labels")
    return None if hit.empty else int(hit["labels"].iloc[0])


def labelled_version(store: Store, version_id: int, given: Mapping[int, int], *, note: str = "") -> int:
    """A new version where pool rows ``given`` (dataset row → class index) carry their labels."""
    import dataclasses

    ds = store.load_dataset(version_id)
    if not given:
        raise DataError("no labels given yet: label at least one item in the queue.")
    rows = np.fromiter(given.keys(), dtype=np.int64)
    classes = np.fromiter(given.values(), dtype=np.int64)
    if rows.min() < 0 or rows.max() >= len(ds) or ds.labelled[rows].any():
        raise DataError("only items of this version's unlabelled pool can be labelled here.")
    if classes.min() < 0 or classes.max() >= ds.n_classes:
        raise DataError(f"a label must be one of the {ds.n_classes} classes.")
    labels = ds.labels.copy()
    labels[rows] = classes
    out = dataclasses.replace(ds, labels=labels)
    return _save_labelled(store, version_id, out, rows, classes, note or f"labelled {len(rows):,} pool items")


def _save_labelled(store: Store, version_id: int, out: Any, rows: np.ndarray, classes: np.ndarray, note: str, **extra: int) -> int:
    """``out`` saved as a "label" version of ``version_id``, the labels given kept in its params."""
    return store.save_dataset(
        out,
        source=f"label:{version_id}",
        dataset_id=store.version(version_id).dataset_id,
        parent_id=version_id,
        kind="label",
        note=note,
        params={**extra, "labelled": {str(int(r)): int(c) for r, c in zip(rows, classes)}},
    )


def _appended(ds: Any, other: Any, rows: np.ndarray, labels: np.ndarray) -> Any:
    """``ds`` with ``other``'s ``rows`` added as train items labelled ``labels``; meta columns the
    two do not share are left empty; each added row keeps its item number (``source_item``)."""
    import dataclasses

    picked = other.subset(rows)
    if ds.modality == "tabular":
        if list(picked.items.columns) != list(ds.items.columns):
            raise DataError("the target's columns are not this version's; label a target with the same columns.")
        items: Any = pd.concat([ds.items, picked.items], ignore_index=True)
    else:
        a, b = np.asarray(ds.items), np.asarray(picked.items)
        if ds.modality == "image" and a.shape[1:] != b.shape[1:]:
            raise DataError(f"the target's images are {b.shape[1:]}, this version's {a.shape[1:]}; label a target of the same size.")
        items = np.concatenate([a, b])
    meta_a, meta_b = ds.meta.copy(), picked.meta.copy()
    meta_a["source_item"], meta_b["source_item"] = ds.item_ids(), other.item_ids()[rows]
    meta = pd.concat([meta_a, meta_b], ignore_index=True)
    return dataclasses.replace(
        ds,
        items=items,
        labels=np.r_[ds.labels, labels].astype(np.int64),
        split=np.r_[ds.split, np.zeros(len(rows), np.int8)].astype(np.int8),
        meta=meta,
    )


def labelled_from_target(store: Store, version_id: int, target_id: int, given: Mapping[int, int], *, note: str = "") -> int:
    """A new version of ``version_id`` with rows ``given`` (target row → class index) of version
    ``target_id`` added to its train split, labelled. Refused when an added item is one of this
    version's val or test items (labelling it into train would leak the held-out data)."""
    info, ds = store.version(version_id), store.load_dataset(version_id)
    other = store.load_dataset(target_id)
    if not given:
        raise DataError("no labels given yet: label at least one item in the queue.")
    if other.modality != ds.modality:
        raise DataError(f"version {target_id} holds {other.modality} data, this one {ds.modality}.")
    rows = np.fromiter(given.keys(), dtype=np.int64)
    classes = np.fromiter(given.values(), dtype=np.int64)
    if rows.min() < 0 or rows.max() >= len(other):
        raise DataError(f"version {target_id} has {len(other):,} items; a labelled row is outside it.")
    if classes.min() < 0 or classes.max() >= ds.n_classes:
        raise DataError(f"a label must be one of the {ds.n_classes} classes.")
    if store.version(target_id).dataset_id == info.dataset_id:
        held = set(ds.item_ids()[ds.split != 0].tolist())
        have = set(ds.item_ids()[ds.split == 0].tolist())
        ids = [int(i) for i in other.item_ids()[rows]]
        leaked = [i for i in ids if i in held]
        if leaked:
            raise DataError(
                f"{len(leaked)} of these items are this version's val or test items (e.g. item {leaked[0]}): labelled into train they "
                "would leak the held-out data. Label a target of new items (an upload), or take them out of the target."
            )
        if twice := [i for i in ids if i in have]:
            raise DataError(f"{len(twice)} of these items are in this version's train split already (e.g. item {twice[0]}).")
    out = _appended(ds, other, rows, classes)
    words = note or f"labelled {len(rows):,} items of version {target_id} into train"
    return _save_labelled(store, version_id, out, rows, classes, words, labelled_from=int(target_id))
