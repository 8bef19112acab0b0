"""A second view of text items for the label-issue detector: their words.

The detector's probe and neighbours both read one sentence embedding; a label the embedding
cannot tell apart from its neighbours' is invisible to both. Word counts make other mistakes:
``word_view_probs`` gives out-of-fold class probabilities from TF-IDF weighted word and word-pair
counts and multinomial naive Bayes (scikit-learn's ``TfidfVectorizer`` and ``MultinomialNB``: the
classic text classifier, seconds on tens of thousands of texts), over the probe's own folds, and
``core.diagnose.label_issues.find_label_issues`` blends them in. Measured with
``benchmarks/bench_detector_edge.py`` (VADER, one random rater's polarity; see benchmarks/RESULTS.md).

The vocabulary and the IDF weights are fitted on every text, as the PCA is on every embedding: they
see no label. Naive Bayes is fitted inside the training folds only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.diagnose.arrays import as_labels
from core.diagnose.probe import out_of_fold_probs
from core.errors import DataError

WORD_NGRAMS = (1, 2)  # single words and pairs of words
WORD_MIN_DF = 2  # a word (pair) seen in one text only tells nothing about the others
WORD_ALPHA = 0.3  # naive Bayes' additive smoothing; 0.1 and 1.0 did no better on VADER


def word_view_probs(
    texts: Sequence[Any], labels: Any, *, n_folds: int = 5, seed: int = 0, n_classes: int | None = None
) -> np.ndarray | None:
    """Out-of-fold class probabilities (n, K) of naive Bayes on the texts' TF-IDF word counts, or
    None when the texts have no word seen twice (nothing to learn from)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB

    y = as_labels(labels)
    if len(texts) != len(y):
        raise DataError(f"texts has {len(texts)} items but labels has {len(y)}; pass one text per label.")
    vectorizer = TfidfVectorizer(ngram_range=WORD_NGRAMS, min_df=WORD_MIN_DF, sublinear_tf=True)
    try:
        counts = vectorizer.fit_transform(["" if t is None else str(t) for t in texts])
    except ValueError:  # an empty vocabulary: no word appears in two texts
        return None
    return out_of_fold_probs(counts, y, n_folds=n_folds, seed=seed, model=MultinomialNB(alpha=WORD_ALPHA), n_classes=n_classes)
