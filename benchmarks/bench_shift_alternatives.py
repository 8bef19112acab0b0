"""Label-free accuracy on VADER's domain pairs: estimators beyond the product's, on scikit-learn probes.

    .venv/bin/python benchmarks/bench_shift_alternatives.py

The product's estimators (ATC, mean confidence before and after temperature scaling, BBSE) miss the
true accuracy on VADER's other domains by 0.06–0.09 on average (``bench_shift_estimate.py``). This
script asks whether a published estimator of another family does better, on the same 12 ordered
pairs, with deterministic scikit-learn models on the cached MiniLM embeddings (L2-normalised):

- the model: a logistic regression (C = 1) on the source domain's train split, read on its val split
  and on every other domain's texts;
- **ATC** (Garg et al. 2022) and **temperature-scaled mean confidence**, the product's functions;
- **ALine-S** (Baek et al. 2022, agreement on the line): five models (logistic regressions with
  C = 0.1, 1, 10; cosine kNN with k = 15, 50); a line through the probit of every pair's agreement
  on val against on the target, applied to the probit of the model's val accuracy;
- **disagreement shift**: val accuracy minus the fall in agreement with the k = 50 kNN between val
  and target (the idea of Jiang et al. 2022, read as a change from val);
- **distance-aware calibration**: a logistic regression of "right on val" on the log top
  probability and the mean cosine distance to the 10 nearest train texts, averaged on the target.

Printed: per pair the truth and each estimate, then the mean |estimate − truth| per estimator.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _probit(a: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(np.clip(a, 1e-4, 1 - 1e-4)))


def _models():
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    return {
        "lr1": LogisticRegression(C=1.0, max_iter=2000),
        "lr10": LogisticRegression(C=10.0, max_iter=2000),
        "lr01": LogisticRegression(C=0.1, max_iter=2000),
        "knn15": KNeighborsClassifier(15, metric="cosine"),
        "knn50": KNeighborsClassifier(50, metric="cosine"),
    }


def _aline(pv: dict, pt: dict, val_accuracy: float) -> float:
    from scipy.stats import norm

    names = list(pv)
    pts = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            agree_val = float((pv[a].argmax(1) == pv[b].argmax(1)).mean())
            agree_tgt = float((pt[a].argmax(1) == pt[b].argmax(1)).mean())
            pts.append((_probit(agree_val), _probit(agree_tgt)))
    xy = np.array(pts)
    slope, intercept = np.polyfit(xy[:, 0], xy[:, 1], 1)
    return float(norm.cdf(slope * _probit(val_accuracy) + intercept))


def main() -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import NearestNeighbors

    from core.data.demos import load_vader
    from core.embed.embeddings import embed
    from core.shift.estimate import atc_accuracy, fit_temperature, mean_confidence

    warnings.filterwarnings("ignore", category=UserWarning)
    ds = load_vader().dataset
    X = np.asarray(embed(ds), dtype=np.float64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    domain = ds.meta["domain"].astype(str).to_numpy()
    y = ds.labels
    errors: dict[str, list[float]] = {
        k: [] for k in ("ATC", "mean confidence (T on val)", "ALine-S", "disagreement shift", "distance-aware")
    }
    for a in sorted(set(domain)):
        tr = np.flatnonzero((domain == a) & (ds.split == 0))
        va = np.flatnonzero((domain == a) & (ds.split == 1))
        models = _models()
        for m in models.values():
            m.fit(X[tr], y[tr])
        pv = {k: m.predict_proba(X[va]) for k, m in models.items()}
        p_val, y_val = pv["lr1"], y[va]
        val_acc = float((p_val.argmax(1) == y_val).mean())
        near = NearestNeighbors(n_neighbors=10, metric="cosine").fit(X[tr])
        d_val = near.kneighbors(X[va])[0].mean(1)
        right = p_val.argmax(1) == y_val
        calib = LogisticRegression().fit(np.c_[np.log(p_val.max(1)), d_val], right)
        temperature = fit_temperature(p_val, y_val)
        for b in sorted(set(domain) - {a}):
            tg = np.flatnonzero(domain == b)
            pt = {k: m.predict_proba(X[tg]) for k, m in models.items()}
            p_tgt = pt["lr1"]
            truth = float((p_tgt.argmax(1) == y[tg]).mean())
            agree_val = float((p_val.argmax(1) == pv["knn50"].argmax(1)).mean())
            agree_tgt = float((p_tgt.argmax(1) == pt["knn50"].argmax(1)).mean())
            d_tgt = near.kneighbors(X[tg])[0].mean(1)
            est = {
                "ATC": atc_accuracy(p_val, y_val, p_tgt)[0],
                "mean confidence (T on val)": mean_confidence(p_tgt, temperature),
                "ALine-S": _aline(pv, pt, val_acc),
                "disagreement shift": val_acc - (agree_val - agree_tgt),
                "distance-aware": float(calib.predict_proba(np.c_[np.log(p_tgt.max(1)), d_tgt])[:, 1].mean()),
            }
            for k, v in est.items():
                errors[k].append(abs(v - truth))
            print(f"{a} → {b}: true {truth:.3f} (val {val_acc:.3f}) · " + " · ".join(f"{k} {v:.3f}" for k, v in est.items()), flush=True)
    print("\nmean |estimate − truth| over the 12 pairs")
    for k, v in errors.items():
        print(f"  {k:28s} {np.mean(v):.4f} (largest {np.max(v):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
