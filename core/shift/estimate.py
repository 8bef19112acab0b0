"""How a finished run will do on a target it has no labels for.

Everything is read from the run's probabilities: on its val split (with labels) and on the target
(without). The estimates:

- **label shift** by black-box shift estimation (Lipton, Wang & Smola 2018): with ``C[i, j]`` the
  val share predicted ``i`` with true class ``j`` and ``μ[i]`` the target share predicted ``i``,
  solve ``C w = μ`` for the importance weights ``w[j] = q(y=j) / p(y=j)`` (least squares, clipped at
  0); the target's class prior is ``q = w · p`` renormalised. Under pure label shift the target
  accuracy is ``Σ_j q[j] · recall_val[j]``.
- **accuracy by average thresholded confidence** (ATC, Garg et al. 2022): the threshold ``t`` on a
  score (``"maxconf"``: the top-label probability; ``"negent"``: minus the entropy) at which the
  share of val items scoring above ``t`` equals the val accuracy; the estimate is the share of
  target items scoring above ``t``.
- **mean confidence**, plain and after temperature scaling fitted on val (``fit_temperature``): the
  baselines ATC is measured against.
- **expected hallucination rate @τ**: the share of target items answered with confidence ≥ τ,
  times their estimated error — ATC again, fitted on the val items with confidence ≥ τ alone
  (the share of confident val items scoring above ``t_τ`` equals their accuracy).

``estimate_target`` gathers them; given target labels it puts the true values beside the estimates
(``core.metrics``' definitions). Probabilities are rows summing to 1; labels are class indices,
``-1`` for a class the model lacks (left out of val fits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import DataError
from core.metrics.hallucination import DEFAULT_TAU

__all__ = ["LabelShift", "TargetEstimate", "atc_accuracy", "bbse", "estimate_target", "fit_temperature", "mean_confidence"]

SCORES = ("maxconf", "negent")


def _probs(p: Any, name: str, k: int | None = None) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise DataError(f"{name} must be a non-empty 2-D array of class probabilities (items × classes); got shape {a.shape}.")
    if k is not None and a.shape[1] != k:
        raise DataError(f"{name} has {a.shape[1]} classes; the val probabilities have {k}. Use the same run's predictions on both.")
    if not np.isfinite(a).all() or (a < -1e-9).any() or not np.allclose(a.sum(axis=1), 1.0, atol=1e-4):
        raise DataError(f"{name} must hold probabilities: finite, non-negative, each row summing to 1.")
    return np.clip(a, 0.0, 1.0)


def _val(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _probs(probs, "val_probs")
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (p.shape[0],):
        raise DataError(f"val_labels must have one label per val row ({p.shape[0]}); got shape {y.shape}.")
    if (y >= p.shape[1]).any() or (y < -1).any():
        raise DataError(f"val_labels must be class indices 0..{p.shape[1] - 1} (or -1 for a class the model lacks).")
    known = y >= 0
    if known.sum() < 2:
        raise DataError("the val split needs at least 2 labelled items of known classes to fit an estimate.")
    return p[known], y[known]


def score(probs: np.ndarray, kind: str) -> np.ndarray:
    """Per item: the top-label probability (``"maxconf"``) or minus the entropy (``"negent"``)."""
    if kind == "maxconf":
        return probs.max(axis=1)
    if kind == "negent":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(probs > 0, probs * np.log(probs), 0.0).sum(axis=1)
    raise DataError(f"score must be one of {SCORES}; got {kind!r}.")


def _atc_threshold(s_val: np.ndarray, correct: np.ndarray) -> float:
    """The ``t`` with mean(s_val > t) = mean(correct): the top ``round(acc · n)`` val scores lie
    above it (fewer where ties straddle it)."""
    s = np.sort(s_val)
    above = round(float(correct.mean()) * len(s))
    if above >= len(s):
        return float(s[0]) - 1.0
    return float(s[len(s) - above - 1])


def atc_accuracy(val_probs: Any, val_labels: Any, target_probs: Any, *, kind: str = "negent") -> tuple[float, float]:
    """(estimated target accuracy, the threshold) by average thresholded confidence."""
    p, y = _val(val_probs, val_labels)
    q = _probs(target_probs, "target_probs", p.shape[1])
    s_val = score(p, kind)
    t = _atc_threshold(s_val, p.argmax(axis=1) == y)
    return float((score(q, kind) > t).mean()), t


def mean_confidence(probs: Any, temperature: float = 1.0) -> float:
    """Mean top-label probability after dividing the log-probabilities by ``temperature``."""
    return float(_tempered(_probs(probs, "probs"), temperature).max(axis=1).mean())


def _tempered(p: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0:
        return p
    if not temperature > 0:
        raise DataError(f"temperature must be positive; got {temperature}.")
    z = np.log(np.clip(p, 1e-300, 1.0)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(val_probs: Any, val_labels: Any) -> float:
    """T in [0.05, 20] minimising the val NLL of the probabilities tempered by T (a bounded scalar
    search over log T; the probabilities' logs stand for logits, which softmax does not tell apart)."""
    from scipy.optimize import minimize_scalar

    p, y = _val(val_probs, val_labels)
    logp = np.log(np.clip(p, 1e-300, 1.0))

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean())

    r = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(r.x))


@dataclass(frozen=True)
class LabelShift:
    """BBSE's answer: the val (source) class prior, the target's estimated prior, the importance
    weights q/p per class, the confusion matrix's condition number (large: the estimate is
    unstable) and the accuracy the run would have under this label shift alone."""

    source_prior: np.ndarray
    target_prior: np.ndarray
    weights: np.ndarray
    condition: float
    accuracy: float


def bbse(val_probs: Any, val_labels: Any, target_probs: Any) -> LabelShift:
    """Black-box shift estimation from the run's hard predictions."""
    p, y = _val(val_probs, val_labels)
    k = p.shape[1]
    q = _probs(target_probs, "target_probs", k)
    pred = p.argmax(axis=1)
    c = np.zeros((k, k))
    np.add.at(c, (pred, y), 1.0)
    c /= len(y)
    source = np.bincount(y, minlength=k) / len(y)
    mu = np.bincount(q.argmax(axis=1), minlength=k) / len(q)
    present = source > 0  # classes val has: the others cannot be weighed
    w = np.zeros(k)
    sol, *_ = np.linalg.lstsq(c[:, present], mu, rcond=None)
    w[present] = np.clip(sol, 0.0, None)
    target = w * source
    if target.sum() <= 0:
        target, w = source.copy(), present.astype(np.float64)
    target = target / target.sum()
    w = np.divide(target, source, out=np.zeros(k), where=source > 0)
    recall = np.divide(np.diag(c), source, out=np.zeros(k), where=source > 0)
    sv = np.linalg.svd(c[:, present], compute_uv=False)
    condition = float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")
    return LabelShift(source, target, w, condition, float((target * recall).sum()))


@dataclass(frozen=True)
class TargetEstimate:
    """Label-free estimates for one run on one target, and the truth where the target has labels.

    ``accuracy``: method → estimated accuracy ("atc_negent", "atc_maxconf", "mean_confidence",
    "mean_calibrated_confidence", "bbse"); ``hallucination``: method → estimated hallucination
    rate @τ ("atc", "calibrated"); ``truth``: "accuracy" and "hallucination_rate" when labels were
    given; ``label_shift``: BBSE."""

    accuracy: dict[str, float]
    hallucination: dict[str, float]
    label_shift: LabelShift
    temperature: float
    tau: float
    n_val: int
    n_target: int
    truth: dict[str, float] = field(default_factory=dict)

    def errors(self) -> dict[str, float]:
        """|estimate − truth| per accuracy method (empty without target labels)."""
        if "accuracy" not in self.truth:
            return {}
        return {k: abs(v - self.truth["accuracy"]) for k, v in self.accuracy.items()}


def _confident_atc(p: np.ndarray, y: np.ndarray, q: np.ndarray, tau: float, kind: str) -> float:
    """Share of target items with confidence ≥ τ estimated wrong, ATC fitted on confident val items."""
    conf_val, conf_tgt = p.max(axis=1) >= tau, q.max(axis=1) >= tau
    if not conf_tgt.any():
        return 0.0
    if not conf_val.any():
        return float("nan")
    pv, yv = p[conf_val], y[conf_val]
    t = _atc_threshold(score(pv, kind), pv.argmax(axis=1) == yv)
    right = float((score(q[conf_tgt], kind) > t).mean())
    return float(conf_tgt.mean() * (1.0 - right))


def estimate_target(
    val_probs: Any, val_labels: Any, target_probs: Any, *, tau: float = DEFAULT_TAU, target_labels: Any = None, kind: str = "negent"
) -> TargetEstimate:
    """Every estimate of ``core.shift.estimate`` for one run on one target."""
    from core.metrics.hallucination import hallucination_rate

    p, y = _val(val_probs, val_labels)
    q = _probs(target_probs, "target_probs", p.shape[1])
    temperature = fit_temperature(p, y)
    shift = bbse(p, y, q)
    accuracy = {
        "atc_negent": atc_accuracy(p, y, q, kind="negent")[0],
        "atc_maxconf": atc_accuracy(p, y, q, kind="maxconf")[0],
        "mean_confidence": mean_confidence(q),
        "mean_calibrated_confidence": mean_confidence(q, temperature),
        "bbse": shift.accuracy,
    }
    cal = _tempered(q, temperature)
    c = cal.max(axis=1)
    hallucination = {"atc": _confident_atc(p, y, q, tau, kind), "calibrated": float(((c >= tau) * (1.0 - c)).mean())}
    truth: dict[str, float] = {}
    if target_labels is not None:
        t = np.asarray(target_labels, dtype=np.int64)
        if t.shape != (len(q),):
            raise DataError(f"target_labels must have one label per target row ({len(q)}); got shape {t.shape}.")
        known = t >= 0
        truth["accuracy"] = float((q.argmax(axis=1)[known] == t[known]).mean()) if known.any() else float("nan")
        truth["hallucination_rate"] = float(hallucination_rate(q, t, tau=tau))
    return TargetEstimate(accuracy, hallucination, shift, temperature, tau, len(y), len(q), truth)
