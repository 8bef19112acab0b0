"""Label errors in token classification (named entities): which sentences hold a wrong tag, where, and what it should be.

Two steps, the first shared with any other scorer:

1. **Out-of-fold token probabilities** (:func:`out_of_fold_token_probs`): a regularised
   multinomial logistic probe on word features (:func:`token_features`: the word's MiniLM vector
   reduced by PCA, the leading components of its neighbours' vectors, and the shape of the word
   and its neighbours — capitalised, all capitals, digits, punctuation, lower case, first or last
   in the sentence: MiniLM is uncased, so capitalisation, English NER's strongest cue, is not in
   its vectors), fitted in K folds **by sentence** (seeded), so no token is scored by a model
   that saw any token of its sentence.
2. **Scores and flags** (:func:`detect_token_issues`), numpy only, on top of those probabilities.

The reference scores (:func:`reference_scores`) are Wang & Mueller's (2022, *Detecting Label
Errors in Token Classification Data*), written from the paper: a token's score is its
self-confidence (the probability of its given tag), a sentence's the minimum over its tokens
(default) or the softmin with a temperature.

The project's detector changes three things, each measured (``benchmarks/RESULTS.md``, *Token
label errors (NER)*):

- **word-form votes**: the given tags of the other occurrences of the same word form (exact
  spelling, the token itself left out) are counted with the probe's probabilities as a prior worth
  ``PRIOR_WEIGHT`` occurrences: ``(a·p + counts) / (a + n)``. Entity names recur, so a word that
  is B-LOC 90 times and O once is very likely mislabelled the once, whatever the probe says. The
  probe's probabilities are first smoothed by ``SMOOTHING`` so that a single confident probe
  prediction cannot outweigh counted evidence;
- **per-tag calibration** (confident learning's thresholds): a token's support for its given tag
  is divided by that tag's mean support over the tokens that carry it, so an I-MISC token at
  0.3 (typical for I-MISC) is not ranked with an O token at 0.3 (rare for O); each mean is shrunk
  towards the overall one by ``TAG_PRIOR`` tokens (:func:`tag_means`), so a rare tag cannot
  vouch for its own few tokens;
- **spans**: the given tag of a span's first token B-X also counts the probe's I-X mass when the
  token before it is not of type X (the same entity start; a probe often confuses B and I);
  a span's inner tokens take the span's mean support for its type (an inner token can only be
  wrong if the whole span's type is: a boundary error shows at the span's edges), and every
  token of a span is scored no higher than that mean. An O token with high entity probability
  flags a missed span, a span with high O probability a spurious one.

A sentence's score is the minimum over its tokens. **How many sentences to flag** comes from the
data, as confident learning's count does: a token is confidently mislabelled when another tag
reaches its confident-learning threshold (``p_k ≥ t_k``, ``t_k`` the mean probability of tag k
over the tokens given k) and is at least ``ODDS`` times better supported than the given tag
(both per-tag calibrated); the sentences holding such a token are counted, and that many
lowest-scoring sentences are flagged. Suggested tags replace the suspect tokens by the argmax
of the blended probabilities; each entity run they touch is then repaired to a valid IOB2 span
of the type with the most probability over its tokens.

Torch-free: numpy and scikit-learn only.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.diagnose.arrays import as_embeddings, n_workers, run_threads
from core.errors import DataError
from core.tokens.spans import OUTSIDE, spans, split_tag

# The detector's settings, measured in benchmarks/RESULTS.md (Token label errors (NER)).
N_FOLDS = 5
PROBE_COMPONENTS = 128  # PCA components of the word's own vector
CONTEXT_COMPONENTS = 32  # leading components of each neighbour's vector
PROBE_C = 0.1
PROBE_MAX_ITER = 500
SMOOTHING = 0.03  # p → (p + ε) / (1 + Kε) before the word-form vote
PRIOR_WEIGHT = 2.0  # the probe's probabilities count as this many occurrences of the word form
ODDS = 10.0  # an alternative tag this many times better supported than the given one is confident
KNN_WEIGHT = 0.2  # weight of the embedding kNN vote, when embeddings are given
KNN_COMPONENTS = 32
K_NEIGHBOURS = 10
TAG_PRIOR = 20.0  # tokens' worth of the overall mean in each per-tag threshold
SOFTMIN_TEMPERATURE = 0.05  # the reference softmin's temperature (cleanlab's default)


# --------------------------------------------------------------------------- tags


def encode_tags(tags: Sequence[Sequence[str]], tag_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(flat tag indices int64 (n_words,), sentence offsets int64 (n_sentences + 1,))."""
    index = {t: i for i, t in enumerate(tag_names)}
    lengths = np.fromiter((len(s) for s in tags), dtype=np.int64, count=len(tags))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    try:
        y = np.fromiter((index[t] for s in tags for t in s), dtype=np.int64, count=int(offsets[-1]))
    except KeyError as err:
        raise DataError(f"tag {err.args[0]!r} is not one of the tag names {list(tag_names)}; pass every tag the data uses.") from None
    return y, offsets


def _tag_structure(tag_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(type id per tag (0 = O), is-B per tag, the I-tag of each B-tag (-1 if none), type names)."""
    types: list[str] = []
    typ = np.zeros(len(tag_names), np.int64)
    is_b = np.zeros(len(tag_names), bool)
    for j, name in enumerate(tag_names):
        prefix, kind = split_tag(name)
        if prefix == OUTSIDE:
            continue
        if prefix not in ("B", "I") or not kind:
            raise DataError(f"tag {name!r} is not IOB2 (O, B-X or I-X); convert the tags to IOB2 first.")
        if kind not in types:
            types.append(kind)
        typ[j] = types.index(kind) + 1
        is_b[j] = prefix == "B"
    index = {name: j for j, name in enumerate(tag_names)}
    twin = np.array([index.get(f"I-{split_tag(n)[1]}", -1) if is_b[j] else -1 for j, n in enumerate(tag_names)], np.int64)
    return typ, is_b, twin, types


def _sentence_of(offsets: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def _sentence_min(values: np.ndarray, offsets: np.ndarray, empty: float = 1.0) -> np.ndarray:
    """Minimum of ``values`` over each sentence's rows (``empty`` for a sentence without words)."""
    out = np.full(len(offsets) - 1, empty, dtype=np.float64)
    full = np.diff(offsets) > 0
    if full.any():
        out[full] = np.minimum.reduceat(values, offsets[:-1][full])
    return out


# --------------------------------------------------------------------------- out-of-fold probabilities


def sentence_folds(n_sentences: int, n_folds: int = N_FOLDS, seed: int = 0) -> np.ndarray:
    """Fold of each sentence (n_sentences,): a seeded shuffle dealt round-robin, sizes within one."""
    if n_folds < 2:
        raise DataError(f"n_folds must be at least 2, got {n_folds}.")
    if n_sentences < n_folds:
        raise DataError(f"{n_sentences} sentences cannot be split into {n_folds} folds; pass more sentences or fewer folds.")
    folds = np.empty(n_sentences, np.int64)
    folds[np.random.default_rng(seed).permutation(n_sentences)] = np.arange(n_sentences) % n_folds
    return folds


_SHAPES = 5


def _shape(word: str) -> tuple[bool, bool, bool, bool, bool]:
    return (word[:1].isupper(), len(word) > 1 and word.isupper(), any(c.isdigit() for c in word),
            not any(c.isalnum() for c in word), word.islower())  # fmt: skip


def token_features(
    tokens: Sequence[Sequence[str]],
    vectors: Any,
    *,
    n_components: int = PROBE_COMPONENTS,
    context_components: int = CONTEXT_COMPONENTS,
    seed: int = 0,
) -> np.ndarray:
    """Probe features per word, float32 (n_words, p).

    The word's vector reduced to ``n_components`` by :func:`core.diagnose.probe.pca_reduce`
    (label-free, fitted on a seeded sample of all words), the leading ``context_components`` of
    the previous and the next word's (zeros at the sentence's edges), the shape of the word and
    of its neighbours (capitalised, all capitals, a digit, no letter or digit, lower case), and
    whether the word is first or last in its sentence.
    """
    from core.diagnose.probe import pca_reduce

    lengths = np.fromiter((len(s) for s in tokens), dtype=np.int64, count=len(tokens))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    A = as_embeddings(vectors, int(offsets[-1]))
    Z = pca_reduce(A, n_components, seed=seed)
    first = np.zeros(len(A), bool)
    last = np.zeros(len(A), bool)
    first[offsets[:-1][lengths > 0]] = True
    last[offsets[1:][lengths > 0] - 1] = True
    S = np.array([_shape(w) for s in tokens for w in s], dtype=np.float32).reshape(-1, _SHAPES)
    m = min(context_components, Z.shape[1])
    parts = [Z]
    for X in (Z[:, :m], S):
        prev, nxt = np.roll(X, 1, axis=0), np.roll(X, -1, axis=0)
        prev[first], nxt[last] = 0.0, 0.0
        parts += [prev, nxt] if X is not S else [S, prev, nxt]
    parts += [first[:, None].astype(np.float32), last[:, None].astype(np.float32)]
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


def out_of_fold_token_probs(
    features: Any,
    y: Any,
    offsets: Any,
    n_tags: int,
    *,
    n_folds: int = N_FOLDS,
    seed: int = 0,
    C: float = PROBE_C,
    max_iter: int = PROBE_MAX_ITER,
    model: Any = "logreg",
    n_jobs: int | None = None,
) -> np.ndarray:
    """Out-of-fold tag probabilities (n_words, n_tags), folds by sentence.

    Sentences are dealt into ``n_folds`` seeded folds (:func:`sentence_folds`); every token of
    a fold is predicted by a model fitted on the other folds' tokens only. The model is
    ``StandardScaler`` + multinomial ``LogisticRegression(C=C)`` (the classification detector's
    probe, ``core.diagnose.probe``), folds fitted in parallel threads; ``model`` may be any
    scikit-learn classifier with ``predict_proba`` (cloned per fold). A tag missing from a
    fold's training tokens gets probability 0 there.
    """
    from core.diagnose.probe import _make_model, _model_inputs

    X = as_embeddings(features)
    y = np.asarray(y, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    if len(y) != len(X) or offsets[-1] != len(y):
        raise DataError(f"features ({len(X)} rows), tags ({len(y)}) and offsets (to {int(offsets[-1])}) must describe the same words.")
    if y.size and (y.min() < 0 or y.max() >= n_tags):
        raise DataError(f"tag indices must lie in [0, {n_tags}).")
    folds = sentence_folds(len(offsets) - 1, n_folds, seed)[_sentence_of(offsets)]
    probs = np.zeros((len(y), n_tags), np.float64)

    X = _model_inputs(model, X)  # for the logistic probe, scaled once over every word

    def fit_fold(f: int) -> None:
        test = folds == f
        train = ~test
        present = np.unique(y[train])
        if len(present) == 1:
            probs[test, present[0]] = 1.0
            return
        est = _make_model(model, C, max_iter)
        est.fit(X[train], y[train])
        cols = np.asarray(est.classes_, dtype=np.int64)
        probs[np.ix_(np.flatnonzero(test), cols)] = est.predict_proba(X[test])

    from sklearn.exceptions import ConvergenceWarning

    workers = min(n_workers(n_jobs), n_folds) if isinstance(model, str) else 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        run_threads(fit_fold, range(n_folds), workers)
    s = probs.sum(axis=1, keepdims=True)
    s[s == 0] = 1.0
    return probs / s


def _flat_probs(oof_probs: Any, n_words: int, n_tags: int) -> np.ndarray:
    P = np.concatenate([np.asarray(p, np.float64) for p in oof_probs]) if isinstance(oof_probs, list) else np.asarray(oof_probs, np.float64)
    if P.ndim != 2 or P.shape != (n_words, n_tags):
        raise DataError(f"oof_probs must hold one row per word and one column per tag, ({n_words}, {n_tags}); got {P.shape}.")
    if not np.all(np.isfinite(P)) or (P.size and P.min() < 0):
        raise DataError("oof_probs must be finite and non-negative: pass probabilities, not logits.")
    return P


# --------------------------------------------------------------------------- reference scores


def reference_scores(
    y: Any, probs: Any, offsets: Any, *, method: str = "min", temperature: float = SOFTMIN_TEMPERATURE
) -> tuple[np.ndarray, np.ndarray]:
    """Wang & Mueller's scores: (token self-confidence (n_words,), sentence score (n_sentences,)).

    ``method="min"`` (default): a sentence scores its lowest token. ``"softmin"``:
    ``Σ s_i · softmax((1 - s)/temperature)_i`` over the sentence's tokens, which tends to the
    minimum as the temperature goes to 0 and to the mean as it grows. Lower = more suspicious;
    a sentence without words scores 1.
    """
    y = np.asarray(y, dtype=np.int64)
    P = np.asarray(probs, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    s = P[np.arange(len(y)), y]
    if method == "min":
        return s, _sentence_min(s, offsets)
    if method != "softmin":
        raise DataError(f"method must be 'min' or 'softmin', got {method!r}.")
    if temperature <= 0:
        return s, _sentence_min(s, offsets)
    z = (1.0 - s) / temperature
    full = np.diff(offsets) > 0
    starts = offsets[:-1][full]
    sent = _sentence_of(offsets)
    zmax = np.full(len(offsets) - 1, 0.0)
    zmax[full] = np.maximum.reduceat(z, starts)
    w = np.exp(z - zmax[sent])
    out = np.ones(len(offsets) - 1)
    out[full] = np.add.reduceat(w * s, starts) / np.add.reduceat(w, starts)
    return s, out


# --------------------------------------------------------------------------- the detector


@dataclass
class SentenceIssue:
    """One flagged sentence."""

    sentence: int  # index in the given list
    score: float  # sentence score (lower = more suspicious)
    positions: list[int]  # suspect tokens, most suspicious first
    suggested: list[str]  # the sentence's tags with the suspects replaced, valid IOB2
    kinds: list[str]  # what the suggestion changes: "type", "boundary", "missed span", "spurious span" ("no change": the suspect tags stay)


@dataclass
class TokenIssues:
    """What :func:`detect_token_issues` found. n words, m sentences, K tags."""

    token_score: np.ndarray  # (n,) support of the given tag, per-tag calibrated, in [0, 1]; lower = more suspicious
    sentence_score: np.ndarray  # (m,) minimum token score of each sentence
    offsets: np.ndarray  # (m + 1,) sentence i is rows offsets[i]:offsets[i + 1]
    is_issue: np.ndarray  # (m,) bool: flagged
    issues: list[SentenceIssue]  # the flagged sentences, most suspicious first
    suspect: np.ndarray  # (n,) bool: suspect tokens of flagged sentences
    suggested: np.ndarray  # (n,) int64 suggested tag per token (the given tag where nothing is suspect)
    probs: np.ndarray  # (n, K) the blended probabilities (probe, word-form votes, kNN votes if any)
    thresholds: np.ndarray  # (K,) per-tag confident-learning thresholds on ``probs``
    tag_names: list[str]
    n_confident: int = 0  # sentences holding a confidently mislabelled token: the number flagged
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def n_issues(self) -> int:
        return int(self.is_issue.sum())

    @property
    def ranking(self) -> np.ndarray:
        """Every sentence, most suspicious first (ties by position)."""
        return np.argsort(self.sentence_score, kind="stable")


def _form_ids(tokens: Sequence[Sequence[str]]) -> np.ndarray:
    ids: dict[str, int] = {}
    n = sum(len(s) for s in tokens)
    return np.fromiter((ids.setdefault(w, len(ids)) for s in tokens for w in s), dtype=np.int64, count=n)


def blend_word_forms(
    P: np.ndarray, y: np.ndarray, forms: np.ndarray, *, smoothing: float = SMOOTHING, prior: float = PRIOR_WEIGHT
) -> np.ndarray:
    """``(a·p' + counts) / (a + n)``: the probe's smoothed probabilities ``p'`` as a prior worth
    ``a`` occurrences, updated by the given tags of the other ``n`` tokens of the same form."""
    n, K = P.shape
    Ps = (P + smoothing) / (1.0 + K * smoothing)
    if np.isinf(prior):
        return Ps
    nf = int(forms.max()) + 1 if n else 0
    counts = np.bincount(forms * K + y, minlength=nf * K).reshape(nf, K).astype(np.float64)
    V = counts[forms]
    V[np.arange(n), y] -= 1.0  # the token itself is left out
    others = V.sum(axis=1)
    return (prior * Ps + V) / (prior + others)[:, None]


def _knn_votes(embeddings: Any, y: np.ndarray, K: int, seed: int) -> np.ndarray:
    from core.diagnose.knn import knn_graph, knn_label_agreement
    from core.diagnose.probe import pca_reduce

    Z = pca_reduce(as_embeddings(embeddings, len(y)), KNN_COMPONENTS, seed=seed)
    neighbors = knn_graph(Z, k=K_NEIGHBOURS)[0]
    return knn_label_agreement(None, y, n_classes=K, neighbors=neighbors)[1]


def tag_means(values: np.ndarray, y: np.ndarray, K: int, prior: float = TAG_PRIOR) -> np.ndarray:
    """Per-tag mean of ``values`` over the tokens given each tag (confident learning's thresholds),
    shrunk towards the mean over all tokens by ``prior`` tokens' worth: a tag with a handful of
    tokens (all of them perhaps wrong) cannot set a threshold that makes its own tokens look sure;
    a tag with thousands keeps its own mean. A tag no token carries gets the overall mean."""
    counts = np.bincount(y, minlength=K).astype(np.float64)
    overall = float(values.mean()) if len(values) else 1.0
    return (np.bincount(y, weights=values, minlength=K) + prior * overall) / (counts + prior)


def _type_matrix(typ: np.ndarray, n_types: int) -> np.ndarray:
    """(K, n_types + 1) one-hot: tag j → its type (0 = O)."""
    M = np.zeros((len(typ), n_types + 1))
    M[np.arange(len(typ)), typ] = 1.0
    return M


def _calibrated_support(
    B: np.ndarray, y: np.ndarray, offsets: np.ndarray, structure: tuple, span_rules: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(token score in [0, 1], start-merge mask): per-tag calibrated support, with the span rules
    unless ``span_rules`` is False."""
    typ, is_b, twin, types = structure
    n, K = B.shape
    rows = np.arange(n)
    first = np.zeros(n, bool)
    first[offsets[:-1][np.diff(offsets) > 0]] = True
    prev = np.r_[-1, y[:-1]]
    prev[first] = -1
    prev_type = np.where(prev >= 0, typ[np.maximum(prev, 0)], 0)
    merge = is_b[y] & (twin[y] >= 0) & (prev_type != typ[y]) & span_rules  # B-X after a token not of type X
    support = B[rows, y].copy()
    support[merge] += B[rows[merge], twin[y[merge]]]
    th = tag_means(support, y, K)
    score = np.minimum(support / np.maximum(th[y], 1e-12), 1.0)
    if not span_rules:
        return score, merge
    # spans: ids over tokens of a given span (a B-X, or an I-X not continuing X, opens one)
    in_span = typ[y] > 0
    opens = in_span & (is_b[y] | (prev_type != typ[y]))
    span = np.where(in_span, np.cumsum(opens), 0)
    T = B @ _type_matrix(typ, len(types))  # type probabilities: B-X + I-X
    ts = T[rows, typ[y]]
    tht = tag_means(ts, typ[y], len(types) + 1)
    tsc = np.minimum(ts / np.maximum(tht[typ[y]], 1e-12), 1.0)
    span_mean = np.bincount(span, weights=tsc) / np.maximum(np.bincount(span), 1)
    nxt = np.r_[y[1:], 0]
    last = np.zeros(n, bool)
    last[offsets[1:][np.diff(offsets) > 0] - 1] = True
    inner = in_span & ~opens & ~last & (typ[nxt] == typ[y]) & ~is_b[nxt]
    score[in_span] = np.minimum(score[in_span], span_mean[span[in_span]])
    score[inner] = span_mean[span[inner]]
    return score, merge


def _repair(sug: np.ndarray, changed: np.ndarray, B: np.ndarray, offsets: np.ndarray, structure: tuple) -> np.ndarray:
    """Valid IOB2 around the changed tokens: each entity run (a non-O token and the I- tokens that
    follow it, of any type) that holds a changed token, or opens right after one, becomes one span
    of the type with the most probability over its tokens."""
    typ, is_b, _, types = structure
    n = len(sug)
    if not changed.any():
        return sug
    first = np.zeros(n, bool)
    first[offsets[:-1][np.diff(offsets) > 0]] = True
    ent = typ[sug] > 0
    prev_ent = np.r_[False, ent[:-1]] & ~first
    opens = ent & (is_b[sug] | ~prev_ent)
    run = np.where(ent, np.cumsum(opens), 0)
    after_change = np.r_[False, changed[:-1]] & ~first  # a run an edit cut off: it now opens with I-
    touched = np.unique(run[(changed | (after_change & opens)) & ent])
    touched = touched[touched > 0]
    if not len(touched):
        return sug
    sel = np.isin(run, touched)
    T = B[sel] @ _type_matrix(typ, len(types))
    totals = np.zeros((int(run.max()) + 1, len(types) + 1))
    np.add.at(totals, run[sel], T)
    best = 1 + totals[:, 1:].argmax(axis=1)  # a type, never O
    b_tag = {int(typ[j]): j for j in range(len(typ)) if is_b[j]}
    i_tag = {int(typ[j]): j for j in range(len(typ)) if typ[j] > 0 and not is_b[j]}
    out = sug.copy()
    for i in np.flatnonzero(sel):
        t = int(best[run[i]])
        out[i] = b_tag[t] if opens[i] else i_tag.get(t, b_tag[t])
    return out


def _kinds(given: Sequence[str], suggested: Sequence[str]) -> list[str]:
    """What changes from ``given`` to ``suggested``, in span terms."""
    a, b = set(spans(given)), set(spans(suggested))
    out = []
    for _, s, e in sorted(a - b, key=lambda x: x[1]):
        over = [x for x in b - a if x[1] < e and s < x[2]]
        if not over:
            out.append("spurious span")
        elif any((x[1], x[2]) == (s, e) for x in over):
            out.append("type")
        else:
            out.append("boundary")
    for _, s, e in sorted(b - a, key=lambda x: x[1]):
        if not any(x[1] < e and s < x[2] for x in a - b):
            out.append("missed span")
    return out or ["no change"]


def detect_token_issues(
    tokens: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    oof_probs: Any,
    tag_names: Sequence[str],
    embeddings: Any = None,
    *,
    seed: int = 0,
    odds: float = ODDS,
    smoothing: float = SMOOTHING,
    prior: float = PRIOR_WEIGHT,
    span_rules: bool = True,
) -> TokenIssues:
    """Sentences whose tags look wrong, ranked, with suspect tokens and suggested tags.

    Parameters
    ----------
    tokens, tags : sequences of sequences of str
        The sentences' words and their given IOB2 tags.
    oof_probs : array (n_words, K) or list of (len(sentence), K) arrays
        Out-of-fold tag probabilities (e.g. :func:`out_of_fold_token_probs`), columns in the
        order of ``tag_names``. In-sample probabilities make every tag look right.
    tag_names : sequence of str
        The K tags, IOB2 ("O", "B-PER", "I-PER", ...).
    embeddings : array (n_words, d), optional
        Word vectors; when given, the tags of each word's 10 nearest neighbours (cosine, on 32
        PCA components; ``core.diagnose.knn``) enter the blend with weight ``KNN_WEIGHT``. Off by
        default: on CoNLL-2003 train (203,621 tokens) it gained 0.019 precision@k and 0.007 F1
        for ~50 s on 2 busy cores, against 0.3 s for everything else.
    seed : int
        Seeds the PCA sample of the kNN (nothing else here is random).
    odds, smoothing, prior
        ``ODDS``, ``SMOOTHING``, ``PRIOR_WEIGHT`` (the module's docstring says what each does);
        ``prior=float("inf")`` leaves the word-form votes out.
    span_rules : bool, default True
        The span rules (B/I merge at a span's start, inner tokens scored by their span); False
        scores every token alone (for measuring what they add).

    Returns
    -------
    TokenIssues
    """
    t0 = time.perf_counter()
    names = list(tag_names)
    structure = _tag_structure(names)
    y, offsets = encode_tags(tags, names)
    if len(tokens) != len(tags) or sum(len(s) for s in tokens) != len(y):
        raise DataError("tokens and tags must hold the same sentences, one tag per token.")
    K = len(names)
    P = _flat_probs(oof_probs, len(y), K)
    seconds: dict[str, float] = {}
    B = blend_word_forms(P, y, _form_ids(tokens), smoothing=smoothing, prior=prior) if len(y) else P
    if embeddings is not None and len(y) > K_NEIGHBOURS:
        t = time.perf_counter()
        B = (1.0 - KNN_WEIGHT) * B + KNN_WEIGHT * _knn_votes(embeddings, y, K, seed)
        seconds["knn"] = time.perf_counter() - t
    score, merge = _calibrated_support(B, y, offsets, structure, span_rules)
    sentence_score = _sentence_min(score, offsets)
    # the count: sentences holding a confidently mislabelled token
    rows = np.arange(len(y))
    thresholds = tag_means(B[rows, y], y, K)
    R = B / thresholds[None, :]
    R[rows, y] = 0.0
    R[rows[merge], structure[2][y[merge]]] = 0.0
    best = R.max(axis=1) if K > 1 else np.zeros(len(y))
    confident = (best >= 1.0 - 1e-9) & (best >= odds * score)
    sent = _sentence_of(offsets)
    n_confident = len(np.unique(sent[confident]))
    order = np.argsort(sentence_score, kind="stable")
    is_issue = np.zeros(len(offsets) - 1, bool)
    is_issue[order[:n_confident]] = True
    # suspects: confident tokens of flagged sentences, and each flagged sentence's lowest token
    suspect = confident & is_issue[sent]
    flagged = order[:n_confident]
    lows = np.asarray(
        [offsets[i] + int(np.argmin(score[offsets[i] : offsets[i + 1]])) for i in flagged if offsets[i + 1] > offsets[i]], np.int64
    )
    suspect[lows] = True
    pick = B.copy()
    pick[rows[merge], y[merge]] += pick[rows[merge], structure[2][y[merge]]]  # a merged start keeps its B
    suggested = y.copy()
    suggested[suspect] = pick[suspect].argmax(axis=1)
    suggested = _repair(suggested, suggested != y, B, offsets, structure)
    issues = [_issue(int(i), sentence_score, score, suspect, suggested, offsets, tags, names) for i in flagged]
    seconds["total"] = time.perf_counter() - t0
    return TokenIssues(
        token_score=score,
        sentence_score=sentence_score,
        offsets=offsets,
        is_issue=is_issue,
        issues=issues,
        suspect=suspect,
        suggested=suggested,
        probs=B,
        thresholds=thresholds,
        tag_names=names,
        n_confident=n_confident,
        seconds=seconds,
    )


def _issue(
    i: int,
    sentence_score: np.ndarray,
    score: np.ndarray,
    suspect: np.ndarray,
    suggested: np.ndarray,
    offsets: np.ndarray,
    tags: Sequence[Sequence[str]],
    names: list[str],
) -> SentenceIssue:
    a, b = int(offsets[i]), int(offsets[i + 1])
    pos = np.flatnonzero(suspect[a:b])
    pos = pos[np.argsort(score[a:b][pos], kind="stable")]
    sug = [names[j] for j in suggested[a:b]]
    return SentenceIssue(i, float(sentence_score[i]), [int(p) for p in pos], sug, _kinds(list(tags[i]), sug))
