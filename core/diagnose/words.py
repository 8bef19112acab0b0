"""A second view of text items for the label-issue detector: their words.

The detector's probe and neighbours both read one sentence embedding; a label the embedding
cannot tell apart from its neighbours' is invisible to both. Word counts make other mistakes:
``word_view_probs`` gives out-of-fold class probabilities from TF-IDF weighted word and word-pair
counts and multinomial naive Bayes (scikit-learn's ``TfidfTransformer`` and ``MultinomialNB``: the
classic text classifier), over the probe's own folds, and
``core.diagnose.label_issues.find_label_issues`` blends them in. Measured with
``benchmarks/bench_detector_edge.py`` (VADER, one random rater's polarity; see benchmarks/RESULTS.md).

The counts come from :func:`word_pair_counts`, not from scikit-learn's ``TfidfVectorizer``: the
same matrix (the same tokens, words and word pairs, the same ``min_df`` cut; the tests compare
the two column by column), but the pairs are formed and counted as integer codes in numpy
rather than as joined strings in a per-token Python loop. On VADER's 23,320 texts that is
~0.18 s against the vectorizer's ~0.63 s, and the vectorizer alone cost more than half the time
cleanlab's whole recipe takes there.

The vocabulary and the IDF weights are fitted on every text, as the PCA is on every embedding: they
see no label. Naive Bayes is fitted inside the training folds only, in closed form
(:func:`naive_bayes_out_of_fold`: a training fold's class sums are every item's less the fold's; the
tests compare it with ``MultinomialNB`` fold by fold), since the detector fits it twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np

from core.diagnose.arrays import as_labels
from core.diagnose.probe import _sample_weights, _sparse_rows, fold_plan
from core.errors import DataError

WORD_MIN_DF = 2  # a word (pair) seen in one text only tells nothing about the others
WORD_ALPHA = 0.3  # naive Bayes' additive smoothing; 0.1 and 1.0 did no better on VADER
TOKEN = re.compile(r"\w\w+")  # scikit-learn's default token pattern, r"(?u)\b\w\w+\b": runs of 2+ word characters
_SEPARATOR = "TEXTBREAK"  # capitals: never in a lower-cased text
_ASCII_NON_WORD = {i: " " for i in range(128) if not (chr(i).isalnum() or chr(i) == "_")}


def word_pair_counts(texts: Sequence[Any], *, min_df: int = WORD_MIN_DF, names: bool = False) -> tuple[Any, list[str] | None]:
    """Counts of each text's lower-cased words and pairs of adjacent words, as a sparse (n, F) CSR
    matrix of float64, keeping the words and pairs found in at least ``min_df`` texts.

    ``TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, use_idf=False, norm=None)``'s matrix up to
    the order of its columns (words first in order of first appearance, then pairs by code).
    ``names=True`` also returns each column's word or pair (``"first second"``), as the
    vectorizer's feature names, else None. A text that is None counts as empty. Returns
    ``(None, None)`` when no word or pair is left.
    """
    from scipy.sparse import coo_matrix

    # one pass over every text, joined by a separator word no lower-cased text can hold
    joined = f" {_SEPARATOR} ".join("" if t is None else str(t).lower() for t in texts)
    vocab: dict[str, int] = {_SEPARATOR: 0}
    # each word's code is the vocabulary's size when first met (map reads len before setdefault)
    if joined.isascii():
        # ASCII's word characters are [a-z0-9_]: the runs between the others are the regex's tokens, and
        # str.split finds them ~2x faster; runs of one character are dropped after coding, as the regex skips them
        codes = np.fromiter(map(vocab.setdefault, joined.translate(_ASCII_NON_WORD).split(), map(len, repeat(vocab))), np.int64)
        codes = codes[np.fromiter(map(len, vocab), np.int64, len(vocab))[codes] > 1]
    else:
        codes = np.fromiter(map(vocab.setdefault, TOKEN.findall(joined), map(len, repeat(vocab))), np.int64)
    n = len(texts)
    V = len(vocab) - 1  # words are codes 1..V, column code - 1
    doc = np.cumsum(codes == 0)
    is_word = codes != 0
    adjacent = is_word[1:] & is_word[:-1]  # two words in a row, with no separator between: one text
    pair_codes, pair_ids = np.unique((codes[:-1][adjacent] - 1) * V + codes[1:][adjacent] - 1, return_inverse=True)
    doc, pair_doc, ids = doc[is_word], doc[:-1][adjacent], codes[is_word] - 1
    rows = np.concatenate([doc, pair_doc])
    cols = np.concatenate([ids, V + pair_ids.ravel()])
    counts = coo_matrix((np.ones(len(cols)), (rows, cols)), shape=(n, V + len(pair_codes))).tocsr()  # sums repeats
    keep = np.flatnonzero(np.bincount(counts.indices, minlength=counts.shape[1]) >= max(min_df, 1))  # one-letter codes: 0
    if not len(keep):
        return None, None
    counts = counts[:, keep]
    if not names:
        return counts, None
    words = list(vocab)[1:]
    pairs = [f"{words[c // V]} {words[c % V]}" for c in pair_codes.tolist()]
    every = words + pairs
    return counts, [every[j] for j in keep.tolist()]


def word_features(texts: Sequence[Any]) -> Any:
    """The texts' TF-IDF weighted word and word-pair counts, as naive Bayes reads them
    (:func:`word_pair_counts`, then scikit-learn's ``TfidfTransformer(sublinear_tf=True)``: sublinear
    term frequency, smoothed IDF, rows of unit length), or None when no word is seen twice."""
    from sklearn.feature_extraction.text import TfidfTransformer

    counts, _ = word_pair_counts(texts)
    return None if counts is None else TfidfTransformer(sublinear_tf=True).fit_transform(counts)


def word_view_probs(
    texts: Sequence[Any],
    labels: Any,
    *,
    n_folds: int = 5,
    seed: int = 0,
    n_classes: int | None = None,
    sample_weight: Any = None,
) -> np.ndarray | None:
    """Out-of-fold class probabilities (n, K) of naive Bayes on the texts' :func:`word_features`
    (over the probe's folds: the same ``n_folds`` and ``seed``; ``sample_weight`` weighs each item
    in the training folds), or None when the texts have no word seen twice (nothing to learn from).
    The detector builds the features once and calls :func:`naive_bayes_out_of_fold` on them."""
    y = as_labels(labels)
    if len(texts) != len(y):
        raise DataError(f"texts has {len(texts)} items but labels has {len(y)}; pass one text per label.")
    features = word_features(texts)
    if features is None:
        return None
    return naive_bayes_out_of_fold(features, y, n_folds=n_folds, seed=seed, n_classes=n_classes, sample_weight=sample_weight)


def naive_bayes_out_of_fold(
    features: Any,
    labels: Any,
    *,
    n_folds: int = 5,
    seed: int = 0,
    n_classes: int | None = None,
    alpha: float = WORD_ALPHA,
    sample_weight: Any = None,
) -> np.ndarray:
    """``out_of_fold_probs(features, labels, model=MultinomialNB(alpha=alpha), ...)``, in closed form.

    Multinomial naive Bayes is counts: a class's (weighted) feature sums and its (weighted) number
    of items. A training fold's sums are every item's sums less the held-out fold's, so the folds
    need one pass over the matrix, not one fit each; scikit-learn's ``fit`` spends most of its ~3 ms
    per fold on checks and label encoding (NYT editorials' 4,946 texts: ~16 → ~4 ms for five
    folds). The same folds, smoothing (``alpha``), fitted prior and treatment of classes a fold
    lacks; the tests compare the two to 1e-10.
    """
    from scipy.sparse import csr_matrix

    y = as_labels(labels)
    n = len(y)
    F = _sparse_rows(features, n)
    folds, n_eff, K = fold_plan(y, n_folds, seed, n_classes)
    w = _sample_weights(sample_weight, n)
    w = np.ones(n) if w is None else w
    # per fold (a fold id of -1, always in training, joins none), each class's weighted feature sums, items and weight
    held = folds >= 0
    cell = folds[held] * K + y[held]
    by_cell = csr_matrix((w[held], (cell, np.flatnonzero(held))), shape=(n_eff * K, n)) @ F
    totals = csr_matrix((w, (y, np.arange(n))), shape=(K, n)) @ F
    items = np.bincount(cell, minlength=n_eff * K).reshape(n_eff, K)
    mass = np.bincount(cell, weights=w[held], minlength=n_eff * K).reshape(n_eff, K)
    all_items, all_mass = np.bincount(y, minlength=K), np.bincount(y, weights=w, minlength=K)
    probs = np.zeros((n, K))
    for f in range(n_eff):
        targets = np.flatnonzero((folds == f) | ((folds < 0) if f == 0 else np.zeros(n, bool)))
        present = np.flatnonzero(all_items - items[f] > 0)  # the classes this fold's model learns
        if len(present) == 1:
            probs[targets, present[0]] = 1.0
            continue
        counts = np.asarray((totals - by_cell[f * K : (f + 1) * K]).todense())[present] + alpha
        log_prob = np.log(counts) - np.log(counts.sum(axis=1, keepdims=True))
        prior = all_mass[present] - mass[f, present]
        joint = np.asarray(F[targets] @ log_prob.T) + (np.log(prior) - np.log(prior.sum()))
        joint -= joint.max(axis=1, keepdims=True)
        e = np.exp(joint)
        probs[np.ix_(targets, present)] = e / e.sum(axis=1, keepdims=True)
    return probs
