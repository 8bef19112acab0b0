"""Tests of core.metrics: hand-computed fixtures, scikit-learn agreement, edge cases, speed."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from core import metrics as M
from core.metrics.calibration import _bin_index

# ---------------------------------------------------------------------------------------------
# Hand fixture: K = 3 training classes, 5 known rows + 2 unknown rows (label -1).
#
# row  probs               label  pred  conf  correct  ECE bin (15 bins, right-closed)
#  0   .95 .03 .02           0     0    .95     yes    14  (0.933, 1]
#  1   .10 .90 .00           0     1    .90     no     13  (0.867, 0.933]   <- conf == tau
#  2   .20 .20 .60           2     2    .60     yes     8  (0.533, 0.6]     <- on an edge
#  3   .50 .40 .10           1     0    .50     no      7  (0.467, 0.533]
#  4   .04 .04 .92           2     2    .92     yes    13
#  5   .92 .04 .04          -1     0    .92      -     (unknown)
#  6   .40 .30 .30          -1     0    .40      -     (unknown)
# ---------------------------------------------------------------------------------------------
P = np.array(
    [
        [0.95, 0.03, 0.02],
        [0.10, 0.90, 0.00],
        [0.20, 0.20, 0.60],
        [0.50, 0.40, 0.10],
        [0.04, 0.04, 0.92],
        [0.92, 0.04, 0.04],
        [0.40, 0.30, 0.30],
    ]
)
Y = np.array([0, 0, 2, 1, 2, -1, -1])
UNK = Y == -1
TRAIN_COUNTS = np.array([500, 50, 5])  # class 0 head, class 1 medium, class 2 tail


def _random_case(seed: int, n: int = 400, k: int = 6, scale: float = 2.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * scale
    probs = softmax(logits, axis=1)
    labels = rng.integers(0, k, n)
    return rng, logits, probs, labels


# ------------------------------------------------------------------ hand-computed values


def test_hallucination_rate_hand():
    # wrong with conf >= 0.9 among the 5 known rows: only row 1 (conf exactly 0.9) -> 1/5
    assert M.hallucination_rate(P, Y) == pytest.approx(0.2)
    # tau = 0.5: rows 1 (.90) and 3 (.50, exactly tau) are wrong -> 2/5
    assert M.hallucination_rate(P, Y, tau=0.5) == pytest.approx(0.4)


def test_tau_boundary_counts_equal_confidence():
    just_above = float(np.nextafter(0.9, 1.0))
    assert M.hallucination_rate(P, Y, tau=0.9) == pytest.approx(0.2)
    assert M.hallucination_rate(P, Y, tau=just_above) == 0.0
    # unknown rows have conf .92 and .40: tau = .92 counts row 5 -> 1/2; a hair above -> 0
    assert M.forced_known_rate(P, UNK, tau=0.92) == pytest.approx(0.5)
    assert M.forced_known_rate(P, UNK, tau=float(np.nextafter(0.92, 1.0))) == 0.0


def test_forced_known_rate_hand():
    # unknown confs .92 (>= .9) and .40 -> 1/2
    assert M.forced_known_rate(P, UNK) == pytest.approx(0.5)
    assert M.forced_known_rate(P, UNK, tau=0.3) == pytest.approx(1.0)


def test_unknown_auroc_msp_hand_with_tie():
    # positives = unknown (conf .92, .40), negatives = known (.95 .90 .60 .50 .92); lower conf wins.
    # .92 vs known: beats only .95 -> 1, tie with .92 -> 0.5, loses to .90 .60 .50 -> 1.5
    # .40 vs known: lower than all 5                                                -> 5
    # AUROC = 6.5 / (2 * 5) = 0.65
    assert M.unknown_detection_auroc(P, UNK) == pytest.approx(0.65)
    assert M.unknown_detection_auroc(P, UNK, method="msp") == pytest.approx(roc_auc_score(UNK, -P.max(axis=1)))


def test_ece_hand():
    # bin 13: rows 1 (.90 wrong) and 4 (.92 right): acc .5, conf .91 -> |.5 - .91| = .41, weight 2/5
    # bins 14, 8, 7 hold one row each: |1 - .95| = .05, |1 - .6| = .4, |0 - .5| = .5
    # ECE = (2 * .41 + .05 + .4 + .5) / 5 = 1.77 / 5 = 0.354
    assert M.ece(P, Y) == pytest.approx(0.354)
    # with a single bin: |acc - mean conf| = |3/5 - (.95+.90+.60+.50+.92)/5| = |.6 - .774| = .174
    assert M.ece(P, Y, n_bins=1) == pytest.approx(0.174)


def test_reliability_bins_hand():
    rb = M.reliability_bins(P, Y)
    assert rb.lower.shape == rb.upper.shape == rb.count.shape == (15,)
    assert rb.lower[0] == 0.0 and rb.upper[-1] == 1.0
    np.testing.assert_allclose(rb.upper - rb.lower, 1 / 15)
    expected_count = np.zeros(15, dtype=int)
    expected_count[[7, 8, 13, 14]] = [1, 1, 2, 1]
    np.testing.assert_array_equal(rb.count, expected_count)  # conf .6 sits on an edge -> bin 8
    np.testing.assert_allclose(rb.mean_conf[[7, 8, 13, 14]], [0.5, 0.6, 0.91, 0.95])
    np.testing.assert_allclose(rb.accuracy[[7, 8, 13, 14]], [0.0, 1.0, 0.5, 1.0])
    assert np.isnan(rb.mean_conf[0]) and np.isnan(rb.accuracy[0])
    assert rb.ece == pytest.approx(M.ece(P, Y))
    assert set(rb.to_dict()) == {"lower", "upper", "count", "mean_conf", "accuracy"}


def test_bin_edges_right_closed_first_bin_includes_zero():
    b = _bin_index(np.array([0.0, 1 / 15, np.nextafter(1 / 15, 1), 0.6, 0.6000001, 1.0]), 15)
    np.testing.assert_array_equal(b, [0, 0, 1, 8, 9, 14])
    # every edge k/15 of np.linspace belongs to bin k - 1 (and 0 to bin 0)
    np.testing.assert_array_equal(_bin_index(np.linspace(0, 1, 16), 15), [0, *list(range(15))])


def test_classwise_ece_hand():
    probs = np.array([[0.62, 0.28, 0.10], [0.22, 0.30, 0.48]])
    labels = np.array([0, 1])
    # class 0: p .62 (y=1, bin 9), .22 (y=0, bin 3)   -> (.38 + .22) / 2 = .30
    # class 1: p .28 (y=0), .30 (y=1), both bin 4       -> |1/2 - .29| * 2/2 = .21
    # class 2: p .10 (y=0, bin 1), .48 (y=0, bin 7)     -> (.10 + .48) / 2 = .29
    mean, per = M.classwise_ece(probs, labels)
    np.testing.assert_allclose(per, [0.30, 0.21, 0.29])
    assert mean == pytest.approx(0.80 / 3)


def test_brier_and_nll_hand():
    # per-row sum_k (p_k - onehot_k)^2:
    # 0: .05^2 + .03^2 + .02^2 = .0038     1: .9^2 + .9^2 + 0 = 1.62     2: .2^2 + .2^2 + .4^2 = .24
    # 3: .5^2 + .6^2 + .1^2 = .62          4: .04^2 + .04^2 + .08^2 = .0096
    # mean = 2.4934 / 5 = 0.49868
    assert M.brier(P, Y) == pytest.approx(0.49868)
    # NLL = -(ln .95 + ln .10 + ln .60 + ln .40 + ln .92) / 5 = 3.864377 / 5 = 0.772875
    expected = -(math.log(0.95) + math.log(0.10) + math.log(0.60) + math.log(0.40) + math.log(0.92)) / 5
    assert M.nll(P, Y) == pytest.approx(expected)
    assert M.nll(P, Y) == pytest.approx(0.772875, abs=1e-6)


def test_nll_clips_zero_probability():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    # row 0: p_y = 0 -> -log(1e-12) = 27.631021; row 1: -log .5 = .693147
    assert M.nll(probs, [1, 0]) == pytest.approx((-math.log(1e-12) - math.log(0.5)) / 2)


def test_risk_coverage_and_aurc_hand():
    # known rows by conf desc: .95 ok, .92 ok, .90 wrong, .60 ok, .50 wrong
    # risk@k = 0, 0, 1/3, 1/4, 2/5 -> AURC = (1/3 + 1/4 + 2/5) / 5 = 59/300
    cov, risk = M.risk_coverage(P, Y)
    np.testing.assert_allclose(cov, [0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(risk, [0, 0, 1 / 3, 1 / 4, 2 / 5])
    assert M.aurc(P, Y) == pytest.approx(59 / 300)
    # oracle (3 right first): 0, 0, 0, 1/4, 2/5 -> 13/100; excess = 59/300 - 39/300 = 1/15
    assert M.excess_aurc(P, Y) == pytest.approx(1 / 15)


def test_risk_coverage_ties_are_order_independent():
    # two rows tied at .9 (one wrong), one right at .8.
    # k=1: expected 1/2 error in a random pick of the tie; k=2: 1/2; k=3: 1/3 -> AURC = 4/9
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.8, 0.2]])
    for labels in ([1, 0, 0], [0, 1, 0]):
        _, risk = M.risk_coverage(probs, labels)
        np.testing.assert_allclose(risk, [0.5, 0.5, 1 / 3])
        assert M.aurc(probs, labels) == pytest.approx(4 / 9)


def test_per_class_confusion_hand():
    # known rows (true -> pred): 0->0, 0->1, 2->2, 1->0, 2->2
    cm = M.confusion(P.argmax(axis=1), Y, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [1, 0, 0], [0, 0, 2]])
    pc = M.per_class(P, Y, 3)
    np.testing.assert_allclose(pc["precision"], [0.5, 0.0, 1.0])  # predicted 0 twice, 1 once, 2 twice
    np.testing.assert_allclose(pc["recall"], [0.5, 0.0, 1.0])
    np.testing.assert_allclose(pc["f1"], [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(pc["support"], [2, 1, 2])


def test_group_of_classes_thresholds():
    g = M.group_of_classes([101, 100, 20, 19, 0])
    assert g.tolist() == ["head", "medium", "medium", "tail", "tail"]
    g2 = M.group_of_classes([101, 100, 20, 19, 0], head=19, tail=1)
    assert g2.tolist() == ["head", "head", "head", "medium", "tail"]
    with pytest.raises(ValueError, match="tail"):
        M.group_of_classes([1, 2], head=10, tail=50)


def test_ece_by_group_hand():
    # head = class 0: rows 0 (.95 ok, bin 14), 1 (.90 wrong, bin 13) -> (.05 + .90) / 2 = .475
    # medium = class 1: row 3 (.50 wrong)                             -> .5
    # tail = class 2: rows 2 (.60 ok, bin 8), 4 (.92 ok, bin 13)      -> (.40 + .08) / 2 = .24
    groups = M.group_of_classes(TRAIN_COUNTS)
    assert groups.tolist() == ["head", "medium", "tail"]
    res = M.ece_by_group(P, Y, groups)
    assert res == pytest.approx({"head": 0.475, "medium": 0.5, "tail": 0.24})
    # a group without test items is nan; extra group names are kept
    res2 = M.ece_by_group(P, Y, ["head", "rare", "rare"])
    assert res2["head"] == pytest.approx(0.475)
    assert np.isnan(res2["medium"]) and np.isnan(res2["tail"])
    assert res2["rare"] == pytest.approx((0.5 + 0.40 + 0.08) / 3)


def test_summary_hand_and_consistent_with_functions():
    s = M.summary(P, Y, train_counts=TRAIN_COUNTS)
    assert tuple(s) == M.SUMMARY_KEYS
    expected = {
        "n_known": 5,
        "n_unknown": 2,
        "accuracy": 0.6,
        "macro_f1": 0.5,
        "balanced_accuracy": 0.5,
        "worst_class_recall": 0.0,
        "hallucination_rate": 0.2,
        "forced_known_rate": 0.5,
        "unknown_auroc_msp": 0.65,
        "ece": 0.354,
        "ece_head": 0.475,
        "ece_medium": 0.5,
        "ece_tail": 0.24,
        "brier": 0.49868,
        "aurc": 59 / 300,
        "excess_aurc": 1 / 15,
    }
    for key, value in expected.items():
        assert s[key] == pytest.approx(value), key
    assert s["nll"] == pytest.approx(M.nll(P, Y))
    assert s["classwise_ece"] == pytest.approx(M.classwise_ece(P, Y)[0])
    assert np.isnan(s["unknown_auroc_energy"])  # no logits given
    # precomputed groups give the same group ECEs; without groups they are nan
    s2 = M.summary(P, Y, groups=M.group_of_classes(TRAIN_COUNTS))
    assert s2["ece_tail"] == pytest.approx(0.24)
    s3 = M.summary(P, Y)
    assert np.isnan(s3["ece_head"]) and np.isnan(s3["ece_tail"])


# ------------------------------------------------------------------ AUROC / energy


def test_auroc_hand_and_ties():
    # pos {.35, .8} vs neg {.1, .4}: .35 > .1, .35 < .4, .8 > both -> 3 of 4 pairs
    assert M.auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    # pos {2, 1}, neg {1, 0}: pairs 1 + 1 + 0.5 (tie) + 1 = 3.5 of 4
    assert M.auroc([2, 1, 1, 0], [True, True, False, False]) == pytest.approx(0.875)
    assert M.auroc([3, 3, 3, 3], [True, False, True, False]) == pytest.approx(0.5)
    assert np.isnan(M.auroc([1, 2], [True, True]))
    assert np.isnan(M.auroc([1, 2], [False, False]))


def test_auroc_matches_sklearn_with_heavy_ties():
    rng = np.random.default_rng(3)
    for _ in range(5):
        scores = rng.integers(0, 6, 300).astype(float)
        pos = rng.random(300) < 0.3
        assert M.auroc(scores, pos) == pytest.approx(roc_auc_score(pos, scores), abs=1e-12)
    scores = rng.normal(size=1000)
    pos = rng.random(1000) < 0.1
    assert M.auroc(scores, pos) == pytest.approx(roc_auc_score(pos, scores), abs=1e-12)


def test_energy_score_and_auroc():
    logits = np.array([[5.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1000.0, 999.0, 0.0]])
    e = M.energy_score(logits)
    np.testing.assert_allclose(e, -logsumexp(logits, axis=1))
    assert e[1] == pytest.approx(-math.log(3))  # flat logits: highest energy
    assert np.isfinite(e).all()  # stable with huge logits
    np.testing.assert_allclose(M.energy_score(logits, temperature=2.0), -2.0 * logsumexp(logits / 2.0, axis=1))
    # unknown row 1 has the highest energy -> perfect separation
    probs = softmax(logits, axis=1)
    unk = np.array([False, True, False])
    assert M.unknown_detection_auroc(probs, unk, method="energy", logits=logits) == 1.0


def test_unknown_auroc_random_vs_sklearn():
    rng, logits, probs, labels = _random_case(5, n=500)
    unk = rng.random(500) < 0.2
    logits[unk] *= 0.3  # unknowns flatter on average
    probs = softmax(logits, axis=1)
    labels[unk] = -1
    msp = M.unknown_detection_auroc(probs, unk)
    energy = M.unknown_detection_auroc(probs, unk, method="energy", logits=logits, temperature=1.5)
    assert msp == pytest.approx(roc_auc_score(unk, -probs.max(axis=1)))
    assert energy == pytest.approx(roc_auc_score(unk, -1.5 * logsumexp(logits / 1.5, axis=1)))
    assert energy > 0.6 and msp > 0.6
    s = M.summary(probs, labels, logits=logits)
    assert s["unknown_auroc_msp"] == pytest.approx(msp)
    assert s["unknown_auroc_energy"] == pytest.approx(roc_auc_score(unk, -logsumexp(logits, axis=1)))


# ------------------------------------------------------------------ sklearn agreement


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_sklearn(seed):
    rng, _, probs, labels = _random_case(seed, n=300, k=7)
    # class 6: never true and never predicted; class 5: never true but predicted sometimes
    probs[:, 6] = 0.0
    probs /= probs.sum(axis=1, keepdims=True)
    labels = rng.integers(0, 5, 300)
    pred = probs.argmax(axis=1)
    assert (pred == 5).any() and not (pred == 6).any()
    k = 7
    s = M.summary(probs, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about classes without true samples
        assert s["accuracy"] == pytest.approx(accuracy_score(labels, pred))
        assert s["macro_f1"] == pytest.approx(f1_score(labels, pred, labels=range(k), average="macro", zero_division=0))
        assert s["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, pred))
        prec, rec, f1, sup = precision_recall_fscore_support(labels, pred, labels=range(k), zero_division=0)
    pc = M.per_class(probs, labels, k)
    np.testing.assert_allclose(np.nan_to_num(pc["precision"]), prec)
    np.testing.assert_allclose(np.nan_to_num(pc["recall"]), rec)
    np.testing.assert_allclose(pc["f1"], f1)
    np.testing.assert_array_equal(pc["support"], sup)
    assert np.isnan(pc["recall"][5]) and np.isnan(pc["recall"][6]) and np.isnan(pc["precision"][6])
    assert s["worst_class_recall"] == pytest.approx(rec[:5].min())
    np.testing.assert_array_equal(M.confusion(pred, labels, k), confusion_matrix(labels, pred, labels=range(k)))
    assert s["nll"] == pytest.approx(log_loss(labels, probs, labels=range(k)))
    onehot = np.eye(k)[labels]
    assert s["brier"] == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def test_no_support_class_hand():
    # K = 3, class 2 never true nor predicted. true 0 0 1 1, pred 0 1 1 1
    # F1: class 0 = 2*1/(2*1+0+1) = 2/3, class 1 = 2*2/(2*2+1+0) = 0.8, class 2 = 0 (0/0)
    # macro F1 = (2/3 + 0.8 + 0) / 3 = 0.488889 ; balanced acc = (1/2 + 1) / 2 = 0.75 (class 2 left out)
    probs = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1]])
    labels = np.array([0, 0, 1, 1])
    s = M.summary(probs, labels)
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 3)
    assert s["balanced_accuracy"] == pytest.approx(0.75)
    assert s["worst_class_recall"] == pytest.approx(0.5)
    pc = M.per_class(probs.argmax(axis=1), labels, 3)
    assert np.isnan(pc["recall"][2]) and np.isnan(pc["precision"][2]) and pc["f1"][2] == 0.0


def _reference_ece(conf, hit, n_bins):
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        in_bin = (conf > lo) & (conf <= hi) if b else (conf >= lo) & (conf <= hi)
        if in_bin.any():
            total += in_bin.sum() / len(conf) * abs(hit[in_bin].mean() - conf[in_bin].mean())
    return total


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_and_classwise_match_loop_reference(n_bins):
    _, _, probs, labels = _random_case(11, n=500, k=5)
    probs[:7] = np.eye(5)[[0, 1, 2, 3, 4, 0, 1]]  # p = 0 and p = 1 exactly
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    assert M.ece(probs, labels, n_bins=n_bins) == pytest.approx(_reference_ece(conf, (pred == labels).astype(float), n_bins))
    mean, per = M.classwise_ece(probs, labels, n_bins=n_bins)
    ref = [_reference_ece(probs[:, c], (labels == c).astype(float), n_bins) for c in range(5)]
    np.testing.assert_allclose(per, ref)
    assert mean == pytest.approx(np.mean(ref))


# ------------------------------------------------------------------ edge cases


def test_all_correct():
    probs = np.array([[0.7, 0.2, 0.1], [0.05, 0.95, 0.0], [0.1, 0.1, 0.8]])
    labels = np.array([0, 1, 2])
    s = M.summary(probs, labels)
    assert s["accuracy"] == 1.0 and s["macro_f1"] == 1.0 and s["worst_class_recall"] == 1.0
    assert s["hallucination_rate"] == 0.0 and s["aurc"] == 0.0 and s["excess_aurc"] == 0.0
    # every bin has accuracy 1 -> ECE = mean(1 - conf) = (.3 + .05 + .2) / 3
    assert s["ece"] == pytest.approx(0.55 / 3)
    assert np.isnan(s["forced_known_rate"]) and np.isnan(s["unknown_auroc_msp"])


def test_all_unknown():
    labels = np.full(len(P), -1)
    s = M.summary(P, labels)
    assert s["n_known"] == 0 and s["n_unknown"] == len(P)
    for key in (
        "accuracy",
        "macro_f1",
        "balanced_accuracy",
        "worst_class_recall",
        "hallucination_rate",
        "ece",
        "classwise_ece",
        "brier",
        "nll",
        "aurc",
        "excess_aurc",
        "unknown_auroc_msp",
    ):
        assert np.isnan(s[key]), key
    # confs .95 .90 .60 .50 .92 .92 .40 -> 4 of 7 at >= .9
    assert s["forced_known_rate"] == pytest.approx(4 / 7)
    assert np.isnan(M.ece(P, labels)) and np.isnan(M.hallucination_rate(P, labels))
    cov, risk = M.risk_coverage(P, labels)
    assert cov.size == 0 and risk.size == 0
    assert M.reliability_bins(P, labels).count.sum() == 0


def test_unknown_mask_marks_rows_with_any_label():
    # label 7 is outside [0, 3) but the row is marked unknown, so it is accepted and excluded
    labels = np.array([0, 0, 2, 1, 2, 7, 1])
    mask = np.array([False] * 5 + [True, True])
    assert M.ece(P, labels, unknown_mask=mask) == pytest.approx(0.354)
    s = M.summary(P, labels, unknown_mask=mask)
    assert s["forced_known_rate"] == pytest.approx(0.5) and s["accuracy"] == pytest.approx(0.6)
    np.testing.assert_array_equal(M.confusion(P, labels, 3, unknown_mask=mask).sum(), 5)


def test_per_class_accepts_pred_or_probs():
    _, _, probs, labels = _random_case(8)
    a, b = M.per_class(probs, labels, 6), M.per_class(probs.argmax(axis=1), labels, 6)
    for key in ("precision", "recall", "f1", "support"):
        np.testing.assert_array_equal(a[key], b[key])


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: M.ece(P * 2, Y), "sum to 1|\\[0, 1\\]"),
        (lambda: M.ece(P[:, :2] / 1.0, Y), "sum to 1"),
        (lambda: M.ece(np.log(P + 1e-3) * 5, Y), "logits"),
        (lambda: M.ece(P[0], Y[:1]), "2-D"),
        (lambda: M.ece(P, Y[:-1]), "6 entries but probs has 7 rows"),
        (lambda: M.ece(P, np.array([0, 0, 3, 1, 2, -1, -1])), "-1"),
        (lambda: M.ece(P, np.array([0, 0, 2, 1, 2, -2, -1])), "\\[0, 3\\)"),
        (lambda: M.ece(P, Y + 0.5), "whole-number"),
        (lambda: M.ece(np.where(P == 0, np.nan, P), Y), "NaN"),
        (lambda: M.ece(P, Y, n_bins=0), "n_bins"),
        (lambda: M.ece(P, Y, unknown_mask=UNK.astype(int)), "boolean"),
        (lambda: M.hallucination_rate(P, Y, tau=1.5), "tau"),
        (lambda: M.forced_known_rate(P, Y), "boolean"),
        (lambda: M.unknown_detection_auroc(P, UNK, method="energy"), "logits="),
        (lambda: M.unknown_detection_auroc(P, UNK, method="odin"), "msp"),
        (lambda: M.summary(P, Y, logits=np.zeros((7, 2))), "same shape"),
        (lambda: M.summary(P, Y, train_counts=[1, 2]), "one count per class"),
        (lambda: M.confusion([0, 5], [0, 1], 3), "\\[0, 3\\)"),
        (lambda: M.metrics_by_slice(P, Y, ["a"] * 6), "slices"),
        (lambda: M.metrics_by_slice(P, Y, ["a"] * 7, taus=0.9), "unknown option"),
    ],
)
def test_invalid_inputs_raise_actionable_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_sum_tolerance_accepts_float32_softmax():
    _, logits, _, labels = _random_case(4, n=200, k=50)
    probs32 = softmax(logits.astype(np.float32), axis=1).astype(np.float32)
    # accepted (rows sum to 1 only within float32 rounding) and scored like the float64 softmax
    assert M.ece(probs32, labels) == pytest.approx(M.ece(softmax(logits, axis=1), labels), abs=1e-5)


# ------------------------------------------------------------------ slices


def test_metrics_by_slice_matches_subset_summaries():
    rng, logits, probs, labels = _random_case(6, n=300)
    unk = rng.random(300) < 0.15
    labels[unk] = -1
    slices = rng.choice(np.array(["web", "news", "forum"]), 300)
    slices[:3] = "tiny"
    out = M.metrics_by_slice(probs, labels, slices, logits=logits, tau=0.8, train_counts=np.arange(6) * 30)
    assert list(out) == ["forum", "news", "tiny", "web"]
    for key, res in out.items():
        idx = slices == key
        ref = M.summary(probs[idx], labels[idx], logits=logits[idx], tau=0.8, train_counts=np.arange(6) * 30)
        assert res["n"] == idx.sum()
        for metric, value in ref.items():
            np.testing.assert_equal(res[metric], value)  # equal, nan == nan
    assert sum(r["n"] for r in out.values()) == 300
    assert "tiny" not in M.metrics_by_slice(probs, labels, slices, min_items=4)


def test_metrics_by_slice_keys_and_mixed_values():
    out = M.metrics_by_slice(P, Y, np.array([2, 1, 2, 1, 10, 10, 2]))
    assert list(out) == ["1", "2", "10"]
    # slice "1": rows 1 (wrong, conf .9) and 3 (wrong) -> hallucination 1/2, accuracy 0
    assert out["1"]["hallucination_rate"] == pytest.approx(0.5) and out["1"]["accuracy"] == 0.0
    # slice "10": row 4 known (right), row 5 unknown at .92 -> forced-known 1
    assert out["10"]["forced_known_rate"] == 1.0 and out["10"]["n_unknown"] == 1
    mixed = M.metrics_by_slice(P, Y, np.array(["a", None, "a", None, "b", "b", "a"], dtype=object))
    assert set(mixed) == {"a", "b", "None"} and mixed["None"]["n"] == 2


# ------------------------------------------------------------------ one implementation per number


@pytest.mark.parametrize("seed", [0, 1])
def test_macro_f1_balanced_accuracy_worst_recall_match_sklearn(seed):
    rng, _, probs, _ = _random_case(seed, n=300, k=7)
    labels = rng.integers(0, 5, 300)  # classes 5 and 6 have no support
    labels[:20] = -1  # unknown rows are left out
    pred = probs.argmax(axis=1)
    known = labels >= 0
    yk, pk = labels[known], pred[known]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f1 = f1_score(yk, pk, labels=range(7), average="macro", zero_division=0)
        bal = balanced_accuracy_score(yk, pk)
        rec = precision_recall_fscore_support(yk, pk, labels=range(5), zero_division=0)[1]
    for given in (probs, pred):  # probabilities or predicted classes
        assert M.macro_f1(given, labels, 7) == pytest.approx(f1)
        assert M.balanced_accuracy(given, labels, 7) == pytest.approx(bal)
        assert M.worst_class_recall(given, labels, 7) == pytest.approx(rec.min())


def test_macro_f1_balanced_accuracy_worst_recall_hand():
    # the no-support fixture above: true 0 0 1 1, pred 0 1 1 1, K = 3
    pred, labels = np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1])
    assert M.macro_f1(pred, labels, 3) == pytest.approx((2 / 3 + 0.8) / 3)
    assert M.balanced_accuracy(pred, labels, 3) == pytest.approx(0.75)
    assert M.worst_class_recall(pred, labels, 3) == pytest.approx(0.5)
    for fn in (M.macro_f1, M.balanced_accuracy, M.worst_class_recall):  # no known rows: nan, no warning
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert np.isnan(fn(pred, np.full(4, -1), 3))


def test_summary_is_the_single_functions_exactly():
    rng, logits, probs, labels = _random_case(9, n=600, k=6)
    unk = rng.random(600) < 0.1
    labels[unk] = -1
    counts = np.array([500, 300, 60, 30, 10, 2])
    s = M.summary(probs, labels, logits=logits, train_counts=counts, tau=0.7, temperature=1.3, n_bins=10)
    by_group = M.ece_by_group(probs, labels, M.group_of_classes(counts), n_bins=10)
    single = {
        "n_known": float((~unk).sum()),
        "n_unknown": float(unk.sum()),
        "accuracy": M.accuracy(probs, labels),
        "macro_f1": M.macro_f1(probs, labels, 6),
        "balanced_accuracy": M.balanced_accuracy(probs, labels, 6),
        "worst_class_recall": M.worst_class_recall(probs, labels, 6),
        "hallucination_rate": M.hallucination_rate(probs, labels, tau=0.7),
        "forced_known_rate": M.forced_known_rate(probs, unk, tau=0.7),
        "unknown_auroc_msp": M.unknown_detection_auroc(probs, unk),
        "unknown_auroc_energy": M.unknown_detection_auroc(probs, unk, method="energy", logits=logits, temperature=1.3),
        "ece": M.ece(probs, labels, n_bins=10),
        "classwise_ece": M.classwise_ece(probs, labels, n_bins=10)[0],
        "ece_head": by_group["head"],
        "ece_medium": by_group["medium"],
        "ece_tail": by_group["tail"],
        "brier": M.brier(probs, labels),
        "nll": M.nll(probs, labels),
        "aurc": M.aurc(probs, labels),
        "excess_aurc": M.excess_aurc(probs, labels),
    }
    assert set(single) == set(M.SUMMARY_KEYS)
    for key in M.SUMMARY_KEYS:
        assert s[key] == single[key], key  # the same computation, not just close


# ------------------------------------------------------------------ risk-coverage from stored predictions


def test_risk_coverage_from_conf_hand_with_ties():
    # conf .9 (wrong), .9 (right), .8 (right): the tie's expected error 1/2 at k = 1 and 2, then 1/3
    for conf, correct in (([0.9, 0.9, 0.8], [False, True, True]), ([0.8, 0.9, 0.9], [True, True, False])):
        cov, risk = M.risk_coverage_from_conf(np.array(conf), np.array(correct))
        np.testing.assert_allclose(cov, [1 / 3, 2 / 3, 1.0])
        np.testing.assert_allclose(risk, [0.5, 0.5, 1 / 3])
    cov, risk = M.risk_coverage_from_conf(np.zeros(0), np.zeros(0, dtype=bool))
    assert cov.size == 0 and risk.size == 0


def test_risk_coverage_from_conf_is_risk_coverage_of_the_known_rows():
    cov, risk = M.risk_coverage(P, Y)
    known = Y >= 0
    cov2, risk2 = M.risk_coverage_from_conf(P[known].max(axis=1), P[known].argmax(axis=1) == Y[known])
    np.testing.assert_array_equal(cov, cov2)
    np.testing.assert_array_equal(risk, risk2)
    # without ties it is the plain running error rate, most confident first
    rng = np.random.default_rng(2)
    conf, correct = rng.random(200), rng.random(200) < 0.7
    order = np.argsort(-conf)
    _, risk3 = M.risk_coverage_from_conf(conf, correct)
    np.testing.assert_allclose(risk3, np.cumsum(~correct[order]) / np.arange(1, 201))


def test_selective_from_conf_hand_and_as_selective():
    conf = np.array([0.9, 0.6, 0.7, 0.55])
    correct = np.array([True, False, True, False])
    # >= .6 answers .9 (right), .6 (wrong, on the threshold), .7 (right): coverage 3/4, risk 1/3
    assert M.selective_from_conf(conf, correct, 0.6) == {"coverage": 0.75, "risk": pytest.approx(1 / 3)}
    assert M.selective_from_conf(conf, correct, 0.0) == {"coverage": 1.0, "risk": 0.5}
    none = M.selective_from_conf(conf, correct, 0.95)
    assert none["coverage"] == 0.0 and np.isnan(none["risk"])
    empty = M.selective_from_conf(np.zeros(0), np.zeros(0, dtype=bool), 0.5)
    assert np.isnan(empty["coverage"]) and np.isnan(empty["risk"])
    known = Y >= 0
    for t in (0.0, 0.5, 0.9, 0.93):
        got = M.selective_from_conf(P[known].max(axis=1), P[known].argmax(axis=1) == Y[known], t)
        np.testing.assert_equal(got, M.selective(P, Y, t))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: M.risk_coverage_from_conf(np.ones((2, 2)), [True, False]), "1-D"),
        (lambda: M.risk_coverage_from_conf([0.5, 1.5], [True, False]), "\\[0, 1\\]"),
        (lambda: M.risk_coverage_from_conf([0.5, np.nan], [True, False]), "NaN"),
        (lambda: M.risk_coverage_from_conf([0.5, 0.6], [1, 0]), "boolean"),
        (lambda: M.risk_coverage_from_conf([0.5, 0.6], [True]), "one entry per item"),
        (lambda: M.selective_from_conf([0.5], [True], 2.0), "tau"),
    ],
)
def test_risk_coverage_from_conf_rejects_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()
