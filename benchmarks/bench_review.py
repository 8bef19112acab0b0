"""How fast the Diagnose page answers a Keep / Relabel / Drop click on a large version.

    .venv/bin/python benchmarks/bench_review.py [--items 38000] [--clicks 15]

Builds, in a temporary GAPSCOPE_HOME, a version of ``--items`` 28×28 images in 10 classes and its
diagnosis made directly from arrays (10% suspects, 200 duplicate pairs, the top 1% as outliers),
written where the pipeline caches it, so the page opens it as it would after a real diagnosis.
Then, through Streamlit's AppTest, it opens the Diagnose page and clicks: the current item's
Keep (the queue advances), a gallery item's Drop, and a full page rerun for comparison. Prints the
median and range of the wall time per click (``click().run()``), and checks that every click
recorded exactly one decision.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic_version(n: int, k: int = 10, seed: int = 0):  # noqa: ANN201 - (Dataset, Diagnosis)
    """A dataset of ``n`` small images and a diagnosis of it built from arrays."""
    from core.data.dataset import Dataset
    from core.diagnose.coverage import coverage
    from core.diagnose.duplicates import DuplicateCluster
    from core.diagnose.label_issues import LabelIssues
    from core.diagnose.pipeline import Diagnosis

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    split = rng.choice(3, n, p=[0.8, 0.1, 0.1])
    ds = Dataset("bench", "image", images, labels, [f"class {c}" for c in range(k)], split)

    probs = rng.dirichlet(np.full(k, 0.3), n).astype(np.float32)
    score = probs[np.arange(n), labels].astype(np.float64)
    is_issue = np.zeros(n, bool)
    is_issue[np.argsort(score)[: n // 10]] = True
    rank = np.flatnonzero(is_issue)[np.argsort(score[is_issue], kind="stable")]
    noise = np.full((k, k), 0.1 / (k - 1))
    np.fill_diagonal(noise, 0.9)
    issues = LabelIssues(
        is_issue=is_issue,
        score=score,
        suggested=probs.argmax(axis=1).astype(np.int64),
        rank=rank,
        noise_matrix=noise,
        noise_rate_per_class=np.full(k, 0.1),
        thresholds=np.full(k, 0.5),
        confident_joint=(noise * n / k).round(),
        joint=noise / k,
        method="prune_by_noise_rate",
        knn_weight=0.5,
    )
    pairs = rng.choice(n, (200, 2), replace=False)
    dups = [DuplicateCluster(np.sort(p), "near", ("train",), False) for p in pairs]
    outlier_score = rng.random(n).astype(np.float32)
    outliers = np.argsort(-outlier_score)[: n // 100]
    d = Diagnosis(
        probs=probs,
        issues=issues,
        duplicates=dups,
        outlier_score=outlier_score,
        outliers=outliers,
        coverage=coverage(labels, split, k, class_names=ds.class_names),
        map2d=rng.normal(size=(n, 2)).astype(np.float32),
        seconds={"embedding": 0.0},
        backbone="auto",
    )
    return ds, d


def timed(action) -> float:  # noqa: ANN001 - a callable
    t = time.perf_counter()
    action()
    return time.perf_counter() - t


def summary(name: str, seconds: list[float]) -> str:
    ms = [1000 * s for s in seconds]
    return f"{name:<44} median {statistics.median(ms):7.0f} ms   min {min(ms):6.0f}   max {max(ms):6.0f}   (n={len(ms)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=38_000)
    parser.add_argument("--clicks", type=int, default=15)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="gapscope-bench-review-")
    os.environ["GAPSCOPE_HOME"] = home
    from streamlit.testing.v1 import AppTest

    from core.diagnose.pipeline import DiagnoseConfig, _save, cache_path
    from core.store import Store

    t = time.perf_counter()
    ds, d = synthetic_version(args.items)
    store = Store(home)
    vid = store.save_dataset(ds, source="bench:review")
    _save(cache_path(ds, DiagnoseConfig()), d)
    print(f"{args.items:,} items, {d.issues.n_issues:,} suspects; version and diagnosis written in {time.perf_counter() - t:.1f} s")

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    at.switch_page("app_pages/diagnose.py")
    first = timed(at.run)
    assert not at.exception, at.exception
    print(f"first open of the Diagnose page: {first:.2f} s (loads the version and its diagnosis)")

    full = [timed(at.run) for _ in range(5)]  # what every click cost when a click reran the page
    plan = f"plan_{vid}"

    def decisions() -> int:
        p = at.session_state[plan]
        return len(p.drop) + len(p.relabel) + len(p.keep)

    keep: list[float] = []
    drop: list[float] = []
    for _ in range(args.clicks if any(b.key == "q_keep" for b in at.button) else 0):
        before = decisions()
        keep.append(timed(lambda: at.button(key="q_keep").click().run()))
        assert not at.exception, at.exception
        assert decisions() == before + 1, "a Keep click must record one decision"
    at.run()  # the whole page again: the gallery shows the queue as it is now
    for _ in range(args.clicks):
        key = next(b.key for b in at.button if b.key and b.key.startswith(f"drop_{vid}_"))
        before = decisions()
        drop.append(timed(lambda key=key: at.button(key=key).click().run()))
        assert not at.exception, at.exception
        assert decisions() == before + 1, "a Drop click must record one decision"
        at.run()  # the next gallery item's button is drawn by a whole-page run (not timed)
    print(summary("full page rerun (no click)", full))
    if keep:
        print(summary("Keep on the current item (shortcut K)", keep))
    print(summary("Drop under a gallery item", drop))
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
