"""Label issues: which items look mislabelled, how sure we are, and what the label should be.

``find_label_issues`` blends the out-of-fold probe with kNN label votes and runs confident
learning on the blend; ``detect_label_issues`` is the whole pipeline from embeddings (PCA → probe
→ kNN graph → confident learning → a second, reweighted pass → where it applies, the noise-aware
probe of ``core.diagnose.noise_aware``) — the function ``benchmarks/bench_noise.py`` measures against
cleanlab and the one the Diagnose page runs (``core.diagnose.pipeline``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.diagnose.arrays import as_embeddings, as_labels, as_probs, check_labels_fit, one_thread_each
from core.diagnose.confident import ISSUE_METHODS, flag_issues
from core.diagnose.knn import knn_graph, knn_label_agreement
from core.diagnose.noise_aware import applies as noise_aware_applies
from core.diagnose.noise_aware import noise_aware_probs
from core.diagnose.posterior import flag_most_likely_wrong, issue_counts, mislabel_posterior, shrink_noise_matrix
from core.diagnose.probe import out_of_fold_probs, pca_reduce
from core.errors import DataError

# The detector's settings, measured in benchmarks/RESULTS.md (see detect_label_issues): the one
# place they live; core.diagnose.pipeline passes them on.
PROBE_COMPONENTS = 192  # PCA components the probe sees
KNN_COMPONENTS = 96  # leading components the kNN graph uses
PROBE_C = 0.1  # inverse L2 strength of the logistic probe
PROBE_MAX_ITER = 500
N_FOLDS = 5
K_NEIGHBOURS = 10
# With a words' view, the neighbour vote is built only up to this many items. Its cost grows as n²
# and everything else linearly; on VADER's 23,320 texts it cost 0.6-0.9 s (half of cleanlab's whole
# recipe), the Brier rule gave it weight 0-0.1, and leaving it out moved F1 by -0.009 to +0.002
# over seeds 0-4; on 3,600-5,000 texts of one source it moved F1 by -0.007 to +0.012 for ~0.05 s.
KNN_WITH_WORDS_MAX = 10_000
# The second pass (detect_label_issues) refits the probe from this many items × components, and only
# without the words' view; else it reweighs the neighbour votes and the words alone. A refit costs what
# the first fit did: on small sets the probe is a third to a half of the detector's time (digits: 35 of
# 55 ms), and with the words it added at most +0.003 F1 on VADER's texts (benchmarks/RESULTS.md).
SECOND_PASS_PROBE_MIN_CELLS = 1_000_000
WEIGHT_FLOOR = 1e-3  # the least weight the second pass gives an item (a zero would drop a class's last votes)


def combined_label_quality(
    labels: Any,
    probs: Any,
    *,
    knn_agreement: Any = None,
    knn_votes: Any = None,
    weight: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """One label-quality score per item and a suggested label.

    ``score = weight · p_given + (1 - weight) · knn_agreement`` — the weighted mean of the
    probe's self-confidence and the share of neighbours that agree; both are in [0, 1], so the
    score is too (higher = more likely correct). The suggested label is
    ``argmax(weight · probs + (1 - weight) · knn_votes)``. Without kNN inputs the score is the
    self-confidence and the suggestion the probe's argmax.

    Parameters
    ----------
    labels : array-like of shape (n,)
    probs : array-like of shape (n, K)
    knn_agreement : array-like of shape (n,), optional
    knn_votes : array-like of shape (n, K), optional
    weight : float, default 0.5
        Weight of the probe (0..1).

    Returns
    -------
    score : ndarray of shape (n,)
    suggested : ndarray of shape (n,), int64
    """
    y = as_labels(labels)
    P = as_probs(probs, len(y))
    check_labels_fit(y, P.shape[1])
    if not 0.0 <= weight <= 1.0:
        raise DataError(f"weight must be between 0 and 1, got {weight}.")
    sc = P[np.arange(len(y)), y]
    if knn_agreement is None:
        return sc, P.argmax(axis=1)
    ag = np.asarray(knn_agreement, dtype=np.float64)
    score = weight * sc + (1.0 - weight) * ag
    if knn_votes is None:
        return score, P.argmax(axis=1)
    V = np.asarray(knn_votes, dtype=np.float64)
    if V.shape != P.shape:
        raise DataError(f"knn_votes must have the shape of probs {P.shape}, got {V.shape}.")
    return score, (weight * P + (1.0 - weight) * V).argmax(axis=1)


# --------------------------------------------------------------------------- label issues


@dataclass
class LabelIssues:
    """What :func:`find_label_issues` found. Shapes: n items, K classes."""

    is_issue: np.ndarray  # (n,) bool — flagged as probably mislabelled
    score: np.ndarray  # (n,) label quality in [0, 1], higher = more likely correct
    suggested: np.ndarray  # (n,) int — most likely label
    rank: np.ndarray  # (n_issues,) indices of flagged items, most suspicious first
    noise_matrix: np.ndarray  # (K, K) P(given=i | true=j), columns sum to 1
    noise_rate_per_class: np.ndarray  # (K,) 1 - noise_matrix[j, j]
    thresholds: np.ndarray  # (K,) per-class confident thresholds
    confident_joint: np.ndarray  # (K, K) calibrated counts C[given, true]
    joint: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (K, K) Q = C / n
    method: str = "auto"
    knn_weight: float | None = None  # probe weight used in the blend/score (None without kNN); with a view, probe + view
    view_weight: float | None = None  # the second view's weight in the blend (None without one)
    self_confidence: np.ndarray | None = None  # (n,) p_given
    knn_agreement: np.ndarray | None = None  # (n,) when X was given
    # set by detect_label_issues, which builds them on the way:
    probs: np.ndarray | None = None  # (n, K) out-of-fold probabilities
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage
    components: np.ndarray | None = None  # (n, p) float32 PCA-reduced embeddings the probe saw
    neighbors: np.ndarray | None = None  # (n, k) int64 kNN graph on the leading components
    neighbor_sims: np.ndarray | None = None  # (n, k) float32 their cosine similarities
    # the posterior rules's estimates of how many items to flag (core.diagnose.posterior.issue_counts):
    counts: dict[str, float] = field(default_factory=dict)
    passes: int = 1  # 2 after detect_label_issues's second, reweighted pass
    noise_aware: bool = False  # True when detect_label_issues's noise-aware probe re-ranked the items (core.diagnose.noise_aware)

    @property
    def n_issues(self) -> int:
        return int(self.is_issue.sum())


_WEIGHT_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _blend_briers(y: np.ndarray, sources: list[np.ndarray], grid: np.ndarray) -> np.ndarray:
    """Mean Brier score against the given labels, less its constant 1, of the blend
    ``Σ_s grid[m, s]·sources[s]`` for every row m of ``grid``.

    The score is quadratic in the weights, ``aᵀGa − 2aᵀg`` with ``G[s, t]`` the items' mean dot
    product of sources s and t and ``g[s]`` the mean probability source s gives the given label, so
    the whole grid costs S(S+1)/2 passes over the (n, K) arrays rather than one blend per point
    (on 4,946 texts × 2 classes, 39 points: ~0.2 ms against ~4 ms)."""
    rows = np.arange(len(y))
    S = len(sources)
    G = np.empty((S, S))
    for i in range(S):
        for j in range(i, S):
            G[i, j] = G[j, i] = float(np.einsum("nk,nk->", sources[i], sources[j])) / len(y)
    g = np.array([src[rows, y].mean() for src in sources])
    return np.einsum("ms,st,mt->m", grid, G, grid) - 2.0 * grid @ g


def _choose_knn_weight(y: np.ndarray, P: np.ndarray, V: np.ndarray) -> float:
    """Probe weight w in the grid whose blend ``w·P + (1-w)·V`` predicts the given labels best.

    Both sources are honest (out-of-fold probe, self-excluded kNN), so the better predictor of the
    given labels is, under noise that is not adversarial, the better estimate of ``P(given | x)``,
    which is what confident learning and the posterior read. "Best" is the Brier score, a proper
    score of the whole distribution. (Until DIAGNOSIS_VERSION 6 it was how often the blend's argmax
    is the given label, which settles on 0.5 too often: on the benchmark's long tail and look-alike
    classes, where a probe weight of 0.6–0.7 ranks the flips better, the Brier score picks those.)
    """
    grid = np.array([(w, 1.0 - w) for w in _WEIGHT_GRID])
    return _WEIGHT_GRID[int(np.argmin(_blend_briers(y, [P, V], grid)))]


_VIEW_GRID = tuple((a / 10, b / 10) for a in range(2, 9) for b in range(0, 7) if a + b <= 10)


def _choose_view_weights(y: np.ndarray, P: np.ndarray, Q: np.ndarray, V: np.ndarray | None) -> tuple[float, float]:
    """Weights (w, v) of the probe and of a second view in the blend ``w·P + v·Q + (1 − w − v)·V``
    (``V`` the kNN votes; without them v = 1 − w), picked as ``_choose_knn_weight`` picks: by the
    blend's Brier score on the given labels."""
    if V is None:
        grid = tuple((w, 1.0 - w) for w in _WEIGHT_GRID)
        return grid[int(np.argmin(_blend_briers(y, [P, Q], np.array(grid))))]
    weights = np.array([(w, v, 1.0 - w - v) for w, v in _VIEW_GRID])
    return _VIEW_GRID[int(np.argmin(_blend_briers(y, [P, Q, V], weights)))]


_BLEND_RULES = ("blend_prune_by_noise_rate", "blend_posterior")  # rules that run on the probe/kNN blend
_POSTERIOR_RULES = ("posterior", "blend_posterior")  # rules that flag by core.diagnose.posterior


def flagged_rank(is_issue: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``LabelIssues.rank``: the flagged items' indices, lowest label quality first (ties by index)."""
    flagged = np.flatnonzero(is_issue)
    return flagged[np.argsort(score[flagged], kind="stable")]


def find_label_issues(
    labels: Any,
    probs: Any,
    *,
    X: Any = None,
    method: str = "auto",
    k: int = 10,
    knn_weight: float | str = "auto",
    min_examples_per_class: int = 1,
    neighbors: Any = None,
    view: Any = None,
    vote_weights: Any = None,
) -> LabelIssues:
    """Find items whose given label is probably wrong.

    Parameters
    ----------
    labels : array-like of shape (n,)
        Given labels in ``[0, K)``.
    probs : array-like of shape (n, K)
        Out-of-fold predicted probabilities (e.g. :func:`out_of_fold_probs`). In-sample
        probabilities make every label look right.
    X : array-like of shape (n, d), optional
        Embeddings; when given, cosine-kNN label agreement enters the score, the suggestion and
        (for ``method="auto"``) the flagging rule.
    method : str, default "auto"
        Flagging rule (every rule but the two posterior ones finally drops items whose given
        label is the argmax of the probabilities it ran on):

        - ``"prune_by_noise_rate"``: confident learning; for each off-diagonal (i, j) of the
          calibrated confident joint flag the ``round(n·Q[i, j])`` items labelled i with the
          largest margin ``p_j - p_i``;
        - ``"prune_by_class"``: per class i, flag the ``n·sum_{j≠i} Q[i, j]`` items labelled i
          with the lowest ``p_i``;
        - ``"both"``: items flagged by both prune rules;
        - ``"confident_learning"``: the off-diagonals of the confident joint (items confidently
          in another class);
        - ``"predicted_neq_given"``: argmax ≠ given;
        - ``"blend_prune_by_noise_rate"``: ``prune_by_noise_rate`` run on the blend
          ``knn_weight · probs + (1 - knn_weight) · knn_votes`` (needs ``X`` or ``neighbors``);
        - ``"posterior"``: confident learning's noise estimate, then the items most likely
          mislabelled under it, as many as the median of three estimates
          (``core.diagnose.posterior``);
        - ``"blend_posterior"``: ``"posterior"`` on the blend (needs ``X`` or ``neighbors``);
        - ``"auto"``: ``"blend_posterior"`` when kNN is available, else ``"posterior"``. (Without
          neighbours, on the saved out-of-fold probabilities of ``bench_detector_edge.py``'s 7
          tasks × seeds 0–2, ``"posterior"`` beat ``"prune_by_noise_rate"`` on the same
          probabilities by +0.000 to +0.137 F1: level on VADER, +0.02 on look-alikes, +0.10 on
          Census.)

        Why the blend: the kNN vote distribution is a second, non-parametric
        estimate of ``P(given label | x)``, honest like the out-of-fold probe (self excluded),
        with different errors — the linear probe partly learns systematic flips (pair-flip
        noise) and over-fits noisy labels in high dimension, the kNN does neither. Confident
        learning on the average is more precise *and* recalls more. Measured on scikit-learn
        digits (1,797 items, 10 classes; 5-fold logistic probe; k = 10; ``inject_noise`` seeds
        0-2, mean; cleanlab 2.9 ``find_label_issues`` fed the same probabilities):

        ========================  ==================  ==================
        precision / recall / F1   20% symmetric       30% pair-flip
        ========================  ==================  ==================
        PCA-30, cleanlab          0.90 / 0.90 / 0.90  0.65 / 0.81 / 0.72
        PCA-30, no ``X``, prune   0.90 / 0.90 / 0.90  0.65 / 0.81 / 0.72
        PCA-30, no ``X``          0.93 / 0.94 / 0.93  0.79 / 0.78 / 0.79
        PCA-30, blend, prune      0.94 / 0.92 / 0.93  0.89 / 0.90 / 0.90
        PCA-30, ``"auto"``        0.98 / 0.95 / 0.96  0.96 / 0.98 / 0.97
        pixels, cleanlab          0.84 / 0.91 / 0.87  0.60 / 0.77 / 0.67
        pixels, blend, prune      0.95 / 0.93 / 0.94  0.87 / 0.90 / 0.88
        pixels, ``"auto"``        0.99 / 0.93 / 0.96  0.99 / 0.91 / 0.95
        ========================  ==================  ==================

        ("prune" is ``"prune_by_noise_rate"``; "blend, prune" is ``"blend_prune_by_noise_rate"``, ``"auto"`` before
        DIAGNOSIS_VERSION 6, with the weight then chosen by argmax agreement.) Why the posterior
        rule replaced pruning: over confident learning on the same probe it lifted the edge on
        every task and seed of ``benchmarks/bench_detector_edge.py`` (7 tasks × 5 noise seeds,
        smallest edge +0.033; pruning's was −0.029) and on 5 tasks it was not tuned on
        (benchmarks/RESULTS.md).

        Also measured and not chosen (PCA-30, F1 sym / pair-flip): ``"both"`` 0.91 / 0.71,
        ``"prune_by_class"`` 0.92 / 0.70, ``"confident_learning"`` 0.84 / 0.70, prune set ∪
        kNN-disagreement 0.92 / 0.77, prune set ∩ kNN-disagreement 0.92 / 0.79, top-N by the
        combined score 0.95 / 0.80. On synthetic Gaussian classes where the kNN is far weaker
        than the probe (kNN accuracy 0.3 vs 0.6), the blend with the chosen weight still matched
        or beat plain confident learning. Cost: without ``X`` this takes ~5 ms on digits
        (cleanlab: ~10 ms); with ``X`` ~60 ms, nearly all of it the kNN graph, which at
        20,000 × 384 costs about as much as the 5-fold probe (a few seconds on 2 cores) — pass
        ``neighbors`` (from :func:`knn_graph`) to reuse a graph already computed.
    k : int, default 10
        Neighbours for kNN agreement.
    knn_weight : float or "auto", default "auto"
        Weight ``w`` of the probe in the blend ``w · probs + (1 - w) · knn_votes`` that gives the
        score, the suggestion and (for the blend rules) the flags and estimates. ``"auto"`` picks
        w from (0.2, …, 0.9) by the blend's Brier score on the given labels; on digits it picks
        0.2-0.4, on the benchmark's Fashion-MNIST tasks 0.5-0.7, on its table 0.8.
    min_examples_per_class : int, default 1
        Never prune a class below this many items.
    neighbors : ndarray of shape (n, k), optional
        Precomputed :func:`knn_graph` indices (saves recomputing the graph).
    view : array-like of shape (n, K), optional
        Out-of-fold probabilities of a second model that reads the items another way (the
        texts' words: ``core.diagnose.words``). It joins the probe's side of the blend:
        ``w·probs + v·view + (1 − w − v)·knn_votes``, (w, v) picked from a grid (w 0.2–0.8,
        v 0–0.6) by the blend's Brier score on the given labels, as the kNN weight is; the
        probe's part then stands for ``(w·probs + v·view) / (w + v)`` everywhere below, and
        ``view_weight`` records v.
    vote_weights : array-like of shape (n,), optional
        Positive weight of each item's vote as a neighbour (``knn_label_agreement``'s
        ``weights``); :func:`detect_label_issues`'s second pass gives its first pass's label
        quality, so that labels that look wrong sway their neighbours less.

    Returns
    -------
    LabelIssues
        ``is_issue`` (n,); ``score`` (n,) in [0, 1], higher = more likely correct:
        ``w · p_given + (1 - w) · knn_agreement`` (the blend's probability of the given label),
        or ``p_given`` alone without ``X``; under the posterior rules, 1 − the posterior
        probability that the label is wrong; ``suggested`` (n,): argmax of the blend (of
        ``probs`` without ``X``; a flagged item whose blend still prefers its label is suggested
        the class its label most likely came from); ``rank``: flagged indices by ascending
        score; ``counts``: the posterior rule's three estimates of how many to flag; and the
        confident-learning estimates ``noise_matrix`` (K, K), ``noise_rate_per_class`` (K,),
        ``thresholds`` (K,), ``confident_joint`` (K, K) and ``joint`` (K, K), computed from the
        blend when the blend rule is used (on digits this cuts the noise-matrix error: off-
        diagonal MAE 0.022 → 0.006 and worst per-class noise-rate error 0.21 → 0.07 at 30%
        pair-flip; 0.006 → 0.004 and 0.05 → 0.03 at 20% symmetric), else from ``probs``.
    """
    y = as_labels(labels)
    P = as_probs(probs, len(y))
    K = P.shape[1]
    check_labels_fit(y, K)
    if method not in ISSUE_METHODS:
        raise DataError(f"method must be one of {ISSUE_METHODS}, got {method!r}.")
    if min_examples_per_class < 0:
        raise DataError(f"min_examples_per_class must be >= 0, got {min_examples_per_class}.")
    have_knn = X is not None or neighbors is not None
    if method in _BLEND_RULES and not have_knn:
        raise DataError(f"method={method!r} needs X (embeddings) or neighbors; pass X=...")
    if not (knn_weight == "auto" or (isinstance(knn_weight, (int, float)) and 0.0 <= knn_weight <= 1.0)):
        raise DataError(f"knn_weight must be 'auto' or a number in [0, 1], got {knn_weight!r}.")
    agreement = votes = None
    w, v = 1.0, None
    if have_knn:
        if neighbors is None:
            neighbors = knn_graph(as_embeddings(X, len(y)), k=k)[0]
        neighbors = np.asarray(neighbors, dtype=np.int64)
        agreement, votes = knn_label_agreement(None, y, n_classes=K, neighbors=neighbors, weights=vote_weights)
    if view is not None:  # a second view joins the probe's side of the blend
        Q = as_probs(view, len(y))
        if Q.shape != P.shape:
            raise DataError(f"view must have the shape of probs {P.shape}, got {Q.shape}.")
        pw, v = _choose_view_weights(y, P, Q, votes)
        P = (pw * P + v * Q) / (pw + v)
        w = pw + v
    if votes is not None and knn_weight != "auto":
        w = float(knn_weight)
    elif votes is not None and view is None:  # with a view, its grid chose the probe side's weight too
        w = _choose_knn_weight(y, P, votes)
    rule = method
    if method == "auto":
        rule = "blend_posterior" if have_knn else "posterior"
    score, suggested = combined_label_quality(y, P, knn_agreement=agreement, knn_votes=votes, weight=w)
    counts: dict[str, float] = {}
    B = P
    if rule in _BLEND_RULES:
        assert votes is not None  # have_knn: guarded above
        B = w * P + (1.0 - w) * votes
    # the blend and posterior rules start from confident learning's pruning (and its estimates) of B
    mask_, est = flag_issues(y, B, "prune_by_noise_rate" if rule in _BLEND_RULES + _POSTERIOR_RULES else rule, min_examples_per_class)
    if rule in _POSTERIOR_RULES:
        mask_, score, counts = _posterior_flags(y, B, mask_, est, min_examples_per_class)
        suggested = _suggest_another(y, B, suggested, mask_, est["noise_matrix"])
    return LabelIssues(
        is_issue=mask_,
        score=score,
        suggested=suggested,
        rank=flagged_rank(mask_, score),
        noise_matrix=est["noise_matrix"],
        noise_rate_per_class=est["noise_rate_per_class"],
        thresholds=est["thresholds"],
        confident_joint=est["confident_joint"],
        joint=est["joint"],
        method=rule,
        knn_weight=w if have_knn else None,
        view_weight=v,
        self_confidence=P[np.arange(len(y)), y],
        knn_agreement=agreement,
        counts=counts,
    )


def _posterior_flags(
    y: np.ndarray, B: np.ndarray, cl_flags: np.ndarray, est: dict[str, np.ndarray], min_keep: int
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """The posterior rules (``core.diagnose.posterior``) on ``B``: flags, label quality
    ``1 − P(label wrong)``, and the three counts whose median is the number flagged."""
    T = shrink_noise_matrix(est["noise_matrix"], est["confident_joint"].sum(axis=0))
    r = mislabel_posterior(y, B, T)
    counts = issue_counts(y, B, est["noise_matrix"], r, cl_flags)
    n_flag = round(float(np.median(list(counts.values()))))
    return flag_most_likely_wrong(y, r, n_flag, min_keep), 1.0 - r, counts


def _suggest_another(y: np.ndarray, B: np.ndarray, suggested: np.ndarray, flags: np.ndarray, noise_matrix: np.ndarray) -> np.ndarray:
    """A flagged item whose blend still prefers its given label is suggested the class its wrong
    label most likely came from: argmax over j ≠ y of ``T[y, j]·B[j]``."""
    same = np.flatnonzero(flags & (suggested == y))
    if not len(same):
        return suggested
    out = suggested.copy()
    odds = np.asarray(noise_matrix)[y[same], :] * B[same]
    odds[np.arange(len(same)), y[same]] = -np.inf
    out[same] = odds.argmax(axis=1)
    return out


def detect_label_issues(
    X: Any,
    labels: Any,
    *,
    n_components: int | None = PROBE_COMPONENTS,
    knn_components: int | None = KNN_COMPONENTS,
    n_folds: int = N_FOLDS,
    k: int = K_NEIGHBOURS,
    seed: int = 0,
    C: float = PROBE_C,
    max_iter: int = PROBE_MAX_ITER,
    n_classes: int | None = None,
    method: str = "auto",
    min_examples_per_class: int = 1,
    n_jobs: int | None = None,
    progress: Callable[[str, float], None] | None = None,
    texts: Any = None,
    knn_with_words_max: int | None = None,
    second_pass: bool = True,
    noise_aware: bool = True,
) -> LabelIssues:
    """The whole label-noise pipeline, from embeddings to flags.

    1. :func:`pca_reduce` to ``n_components`` dimensions (label-free, fitted on all items);
    2. :func:`out_of_fold_probs` — 5-fold logistic probe on those components;
    3. for texts, :func:`core.diagnose.words.word_view_probs` — naive Bayes on their words;
    4. :func:`knn_graph` — exact cosine kNN on the leading ``knn_components`` of them (with a
       words' view, only up to ``knn_with_words_max`` items);
    5. :func:`find_label_issues` with those probabilities and neighbours (``method="auto"``:
       confident learning's noise estimate on the probe/kNN blend, then the items most likely
       mislabelled under it: ``core.diagnose.posterior``);
    6. a second pass (``second_pass``): the neighbour votes, the words' naive Bayes and, without
       words from ``SECOND_PASS_PROBE_MIN_CELLS`` items × components, the probe fitted again with each item
       weighed by its label quality from step 5 (the probability that its label is right), then
       step 5 again. Labels that look wrong then teach the sources less, so the items they
       mislead stand out: measured in benchmarks/RESULTS.md ("The second pass");
    7. where :func:`core.diagnose.noise_aware.applies` (no words, 3 classes or more, from
       ``NOISE_AWARE_MIN_CELLS`` items × components) and ``noise_aware``: a probe that learns the
       *true* class through the noise matrix step 6 estimated (forward loss correction), the
       probability that each label is wrong under it averaged with step 6's, and as many items
       flagged as step 6 flagged, the most likely wrong first. Structured noise (look-alike classes,
       pair flips) teaches the plain probe the flips; this one learns past them
       (benchmarks/RESULTS.md, "The label-issue detector's noise-aware probe").

    Why reduce, and why two sizes: the kNN graph costs n²·d and a probe iteration n·d·K, and the
    top principal components of a pretrained embedding keep its class structure. The probe is
    linear in n, so it can afford more components (it gains from them on VADER); the kNN is
    quadratic, so it gets fewer. Measured with ``benchmarks/bench_noise.py`` (F1 of the blend
    rule, noise/rater seed 0; VADER also as the mean and worst F1 margin over cleanlab across
    rater seeds 0-4):

    ============================  ===========  ===========  ===========  ===============
    components (probe / kNN)      64 / 64      128 / 128    192 / 96     128 / all of d
    ============================  ===========  ===========  ===========  ===============
    Fashion 10k, 20% symmetric    0.784        0.800        0.800        0.803
    Fashion 10k, 30% pair-flip    0.808        0.797        0.786        0.807
    Fashion 60k, 20% symmetric    —            0.838        0.843        —
    Fashion 60k, 30% pair-flip    —            0.854        0.856        —
    VADER, seed 0                 0.437        0.450        0.450        0.454
    VADER, margin mean / worst    —            +.009/+.001  +.010/+.004  —
    ============================  ===========  ===========  ===========  ===============

    (The last column's kNN on the full 1280-d / 384-d embedding costs 3-10x the time.)

    192 / 96 is the default: the safest margin on VADER (the hard task: one rater's label), a
    quarter less kNN work than 128 / 128, and within 0.02 of the best on Fashion-MNIST (where
    every setting beats cleanlab by 0.02-0.26 F1). ``C = 0.1`` scores like ``C = 1`` (within
    0.005 F1) and converges about twice as fast.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Embeddings (float32).
    labels : array-like of shape (n,)
        Given labels in ``[0, K)``.
    n_components : int or None, default 192
        PCA dimension of the probe (capped at d); None skips the PCA (probe and kNN then use
        ``X`` as given).
    knn_components : int or None, default 96
        Leading components used by the kNN graph; None uses all ``n_components``.
    n_folds, seed, C, max_iter, n_classes
        Passed to :func:`out_of_fold_probs` (``seed`` also seeds the PCA sample).
    k : int, default 10
        Neighbours in the kNN graph.
    method, min_examples_per_class
        Passed to :func:`find_label_issues`.
    n_jobs : int, optional
        Threads for the probe's folds and the kNN graph; default all usable cores.
    progress : callable, optional
        ``progress(stage, fraction)`` as each stage starts (fraction of the work done, 0..1).
    texts : sequence of str, optional
        The items' texts, for text data: their words give a second view
        (:func:`core.diagnose.words.word_view_probs`, over the probe's folds) that joins the
        blend (``find_label_issues``'s ``view``). On VADER it lifted F1 over confident learning
        on the same probe from +0.007–0.015 to about +0.03–0.04 (benchmarks/RESULTS.md).
    knn_with_words_max : int, optional
        With a words' view, the kNN graph is built only when there are at most this many items
        (default ``KNN_WITH_WORDS_MAX``, 10,000, read at call time: past it, the vote costs more
        than everything else together and adds nothing measurable). Without one, it is always
        built.
    second_pass : bool, default True
        Run step 6. ``False`` gives the first pass's flags (what DIAGNOSIS_VERSION 8 flagged).
    noise_aware : bool, default True
        Run step 7 where it applies. ``False`` gives what DIAGNOSIS_VERSION 9 flagged.

    Returns
    -------
    LabelIssues
        As :func:`find_label_issues` (of the last pass; ``passes`` says which), plus ``probs``
        (n, K), the first pass's out-of-fold probe probabilities (what confident learning alone
        would read); ``seconds``, wall time per stage (``pca``, ``probe``, ``words``, ``knn``,
        ``confident_learning``, ``second_pass``, ``noise_aware``); and what was built on the way, for callers that need more than
        the flags (the Diagnose pipeline draws its map and finds outliers with them):
        ``components`` (the PCA-reduced embeddings), ``neighbors`` and ``neighbor_sims`` (the
        kNN graph; None where it was not built).
    """
    y = as_labels(labels)
    A = as_embeddings(X, len(y))
    if method not in ISSUE_METHODS:
        raise DataError(f"method must be one of {ISSUE_METHODS}, got {method!r}.")
    for name, v in (("n_components", n_components), ("knn_components", knn_components)):
        if v is not None and v < 1:
            raise DataError(f"{name} must be a positive number of components or None, got {v}.")
    if texts is not None and len(texts) != len(y):
        raise DataError(f"texts has {len(texts)} items but labels has {len(y)}; pass one text per label.")
    report = progress or (lambda stage, fraction: None)
    seconds: dict[str, float] = {}
    probe: dict[str, Any] = {"n_folds": n_folds, "seed": seed, "C": C, "n_classes": n_classes, "max_iter": max_iter, "n_jobs": n_jobs}
    flagging: dict[str, Any] = {"method": method, "min_examples_per_class": min_examples_per_class}
    with one_thread_each():  # every stage brings its own threads where they pay (ARCHITECTURE.md, "Threads")
        report("reducing embeddings", 0.0)
        t = time.perf_counter()
        Z = pca_reduce(A, n_components, seed=seed, n_jobs=n_jobs) if n_components is not None else A
        seconds["pca"] = time.perf_counter() - t
        report("out-of-fold probabilities", 0.1)
        t = time.perf_counter()
        probs = out_of_fold_probs(Z, y, **probe)
        seconds["probe"] = time.perf_counter() - t
        words = view = None
        if texts is not None:
            from core.diagnose.words import naive_bayes_out_of_fold, word_features

            report("words", 0.5)
            t = time.perf_counter()
            words = word_features(texts)  # once: the second pass fits naive Bayes on them again
            if words is not None:
                view = naive_bayes_out_of_fold(words, y, n_folds=n_folds, seed=seed, n_classes=probs.shape[1])
            seconds["words"] = time.perf_counter() - t
        neighbors = sims = None
        if view is None or len(y) <= (KNN_WITH_WORDS_MAX if knn_with_words_max is None else knn_with_words_max):
            report("nearest neighbours", 0.55)
            t = time.perf_counter()
            Zk = Z if n_components is None or knn_components is None else Z[:, :knn_components]
            neighbors, sims = knn_graph(Zk, k=k, n_jobs=n_jobs)
            seconds["knn"] = time.perf_counter() - t
        report("confident learning", 0.7)
        t = time.perf_counter()
        res = find_label_issues(y, probs, neighbors=neighbors, view=view, **flagging)
        seconds["confident_learning"] = time.perf_counter() - t
        if second_pass:
            report("second pass", 0.8)
            t = time.perf_counter()
            res = _second_pass(res, y, Z, probs, words, neighbors, probe, flagging)
            seconds["second_pass"] = time.perf_counter() - t
        if noise_aware and noise_aware_applies(len(y), Z.shape[1], probs.shape[1], words is not None):
            report("noise-aware probe", 0.9)
            t = time.perf_counter()
            res = noise_aware_rerank(res, y, Z, n_folds=n_folds, seed=seed, n_jobs=n_jobs, min_examples_per_class=min_examples_per_class)
            seconds["noise_aware"] = time.perf_counter() - t
    res.probs = probs
    res.seconds = seconds
    res.components, res.neighbors, res.neighbor_sims = Z, neighbors, sims
    return res


def _second_pass(
    first: LabelIssues,
    y: np.ndarray,
    Z: np.ndarray,
    probs: np.ndarray,
    words: Any,
    neighbors: np.ndarray | None,
    probe: dict[str, Any],
    flagging: dict[str, Any],
) -> LabelIssues:
    """:func:`detect_label_issues`'s second pass: every source fitted again with each item weighed by
    its first-pass label quality (the probability that its label is right), then the same flagging.

    The neighbour votes and the words' naive Bayes always; the probe when there are no words and
    at least ``SECOND_PASS_PROBE_MIN_CELLS`` items × components (see there). Returns ``first``
    unchanged when there is nothing to refit."""
    refit = words is None and Z.shape[0] * Z.shape[1] >= SECOND_PASS_PROBE_MIN_CELLS
    if not (refit or words is not None or neighbors is not None):
        return first
    w = np.clip(first.score, WEIGHT_FLOOR, 1.0)
    probs2 = out_of_fold_probs(Z, y, **probe, sample_weight=w) if refit else probs
    view = None
    if words is not None:
        from core.diagnose.words import naive_bayes_out_of_fold

        view = naive_bayes_out_of_fold(words, y, n_folds=probe["n_folds"], seed=probe["seed"], n_classes=probs.shape[1], sample_weight=w)
    res = find_label_issues(y, probs2, neighbors=neighbors, view=view, vote_weights=None if neighbors is None else w, **flagging)
    res.passes = 2
    return res


def noise_aware_posterior(
    res: LabelIssues, labels: Any, Z: Any, *, n_folds: int = N_FOLDS, seed: int = 0, n_jobs: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The noise-aware probe's probability that each label is wrong, its out-of-fold
    ``P(true class | x)`` and the noise matrix it was fitted through (``res``'s, shrunk as the
    posterior rule shrinks it): (n,), (n, K), (K, K)."""
    y = as_labels(labels)
    T = shrink_noise_matrix(res.noise_matrix, res.confident_joint.sum(axis=0))
    p = noise_aware_probs(Z, y, T, n_folds=n_folds, seed=seed, n_jobs=n_jobs)
    return mislabel_posterior(y, p, T), p, T


def noise_aware_rerank(
    res: LabelIssues,
    labels: Any,
    Z: Any,
    *,
    n_folds: int = N_FOLDS,
    seed: int = 0,
    n_jobs: int | None = None,
    min_examples_per_class: int = 1,
) -> LabelIssues:
    """:func:`detect_label_issues`'s step 7: ``res`` re-ranked by the mean of its probability that
    each label is wrong (1 − its label quality) and the noise-aware probe's
    (:func:`core.diagnose.noise_aware.noise_aware_probs` on the components ``Z`` under ``res``'s
    noise matrix, shrunk as the posterior rule shrinks it), as many items flagged as ``res``
    flagged. A flagged item whose suggestion was its own label is suggested the true class most
    likely under the noise-aware probe. ``detect_label_issues`` calls it only where
    :func:`core.diagnose.noise_aware.applies`; the benchmarks call it elsewhere too."""
    y = as_labels(labels)
    aware, p, T = noise_aware_posterior(res, y, Z, n_folds=n_folds, seed=seed, n_jobs=n_jobs)
    wrong = 0.5 * aware + 0.5 * (1.0 - res.score)
    flags = flag_most_likely_wrong(y, wrong, res.n_issues, min_examples_per_class)
    score = 1.0 - wrong
    suggested = res.suggested.copy()
    again = flags & (suggested == y)
    if again.any():
        true_given = T[y[again], :] * p[again]  # ∝ P(true j | x, given y)
        true_given[np.arange(int(again.sum())), y[again]] = -np.inf
        suggested[again] = true_given.argmax(axis=1)
    return replace(res, is_issue=flags, score=score, rank=flagged_rank(flags, score), suggested=suggested, noise_aware=True)
