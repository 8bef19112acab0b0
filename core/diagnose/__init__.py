"""Where training data is incomplete: label noise, near-duplicates, outliers, class coverage.

The detectors work on arrays (embeddings ``X`` (n, d) float32, integer ``labels`` (n,) in
``[0, K)``) with numpy, scipy and scikit-learn only; ``pipeline.diagnose`` runs them all on a
dataset version (embedding it first, caching the result) for the Diagnose page, and ``cleaning``
turns decisions into a new version.

==============  =====================================================================
module          idea
==============  =====================================================================
arrays          input checks shared by the detectors
probe           PCA reduction and out-of-fold probabilities from a linear probe
knn             exact cosine kNN graph in tiles; kNN label agreement
confident       confident learning: thresholds, confident joint, noise matrix, pruning
posterior       the flagging rule after confident learning: P(label wrong) under the
                estimated noise, and how many to flag (median of three counts)
label_issues    ``find_label_issues`` (probe/kNN blend) and ``detect_label_issues``
                (the benchmarked pipeline from embeddings to flags)
duplicates      exact and near-duplicate clusters, cross-split leaks
outliers        kNN-distance outliers
coverage        classes missing or thin per split
synthetic       label noise with a known noise matrix (tests, benchmarks, self-checks)
maps            2-D PCA and t-SNE maps
pipeline        ``diagnose(ds)``: all of the above on a dataset, cached
cleaning        keep / relabel / drop plans saved as a new dataset version
tokens          ``diagnose_tokens(ds)``: token (NER) label errors on every sentence, cached,
                and in the background
token_review    sentence plans (keep / new tags / drop) as new versions, the review queue
==============  =====================================================================

The detector functions are re-exported here: ``from core import diagnose as dg;
dg.detect_label_issues(X, labels)``.
"""

from core.diagnose.confident import (
    ISSUE_METHODS,
    confident_joint,
    confident_thresholds,
    estimate_noise,
    label_quality_scores,
)
from core.diagnose.coverage import coverage
from core.diagnose.duplicates import DuplicateCluster, near_duplicates
from core.diagnose.knn import knn_graph, knn_label_agreement
from core.diagnose.label_issues import LabelIssues, combined_label_quality, detect_label_issues, find_label_issues
from core.diagnose.outliers import outlier_scores, outliers
from core.diagnose.probe import out_of_fold_probs, pca_reduce
from core.diagnose.synthetic import inject_noise, make_noise_matrix

__all__ = [
    "ISSUE_METHODS",
    "DuplicateCluster",
    "LabelIssues",
    "combined_label_quality",
    "confident_joint",
    "confident_thresholds",
    "coverage",
    "detect_label_issues",
    "estimate_noise",
    "find_label_issues",
    "inject_noise",
    "knn_graph",
    "knn_label_agreement",
    "label_quality_scores",
    "make_noise_matrix",
    "near_duplicates",
    "out_of_fold_probs",
    "outlier_scores",
    "outliers",
    "pca_reduce",
]
