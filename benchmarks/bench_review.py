"""How fast the Diagnose page answers a Keep / Relabel / Drop click on a large version.

    .venv/bin/python benchmarks/bench_review.py [--items 38000] [--clicks 15] [--browser]

Builds, in a temporary GAPSCOPE_HOME, a version of ``--items`` 28×28 images in 10 classes and its
diagnosis made directly from arrays (10% suspects, 200 duplicate pairs, the top 1% as outliers),
written where the pipeline caches it, so the page opens it as it would after a real diagnosis.
Then, through Streamlit's AppTest, it opens the Diagnose page and clicks: the current item's
Keep (the queue advances), a gallery item's Drop, and a page rerun with no click for comparison.
Prints the median and range of the wall time per click (``click().run()``), and checks that every
click recorded exactly one decision. AppTest sends no fragment id with a click, so there a click
reruns the whole page (the review panels are fragments; only a browser reruns them alone).

With ``--browser`` it also serves the app (``streamlit run`` on 127.0.0.1) and drives Debian's
Chromium with Playwright — the figure that answers "how long does a click take": the time from
pressing K (the Keep shortcut), or clicking Keep, to the queue's new count on the screen; it
checks that the plan bar above the tabs counted every one of them.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from core.data.dataset import Dataset
    from core.diagnose.pipeline import Diagnosis


def synthetic_version(n: int, k: int = 10, seed: int = 0) -> tuple[Dataset, Diagnosis]:
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


def timed(action: Callable[[], object]) -> float:
    t = time.perf_counter()
    action()
    return time.perf_counter() - t


def summary(name: str, seconds: list[float]) -> str:
    ms = [1000 * s for s in seconds]
    return f"{name:<44} median {statistics.median(ms):7.0f} ms   min {min(ms):6.0f}   max {max(ms):6.0f}   (n={len(ms)})"


CHROMIUM = "/usr/bin/chromium"
COUNT_CHANGED = """(before) => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .some(e => / items to review$/.test(e.innerText) && e.innerText !== before)"""
COUNT_NOW = """() => ([...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .find(e => / items to review$/.test(e.innerText)) || {innerText: ""}).innerText"""


def browser_clicks(home: str, clicks: int) -> tuple[list[float], list[float], list[float]]:
    """Seconds from pressing K, and from clicking Keep, to the queue's new count on the screen; then
    from pressing K with the queue's gallery shown."""
    import socket
    import subprocess
    import urllib.request

    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    flags = [
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), *flags],
        cwd=ROOT,
        env={**os.environ, "GAPSCOPE_HOME": home},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(f"{url}/diagnose")
            page.locator(".st-key-q_keep button").first.wait_for()
            page.wait_for_function("() => document.querySelector('[data-testid=\"stStatusWidget\"]') === null")

            def one(act: Callable[[], object]) -> float:
                before = page.evaluate(COUNT_NOW)
                t = time.perf_counter()
                act()
                page.wait_for_function(COUNT_CHANGED, arg=before, polling="raf")
                dt = time.perf_counter() - t
                page.wait_for_function("() => document.querySelector('[data-testid=\"stStatusWidget\"]') === null")
                return dt

            page.get_by_role("heading", name="Diagnose").click()  # focus on the page, not on a field
            keys = [one(lambda: page.keyboard.press("k")) for _ in range(clicks)]
            buttons = [one(lambda: page.locator(".st-key-q_keep button").first.click()) for _ in range(clicks)]
            page.locator(".st-key-dg_sus_gallery label").first.click()  # the gallery on (off by default on a large version)
            page.locator(".st-key-dg_sus_page").first.wait_for()
            page.wait_for_function("() => document.querySelector('[data-testid=\"stStatusWidget\"]') === null")
            page.get_by_role("heading", name="Diagnose").click()
            with_gallery = [one(lambda: page.keyboard.press("k")) for _ in range(clicks)]
            bar = page.get_by_text(re.compile(r"reviewed and kept")).first.inner_text()
            assert f"{3 * clicks} reviewed and kept" in bar, bar  # the panel redrew the bar above the tabs
            browser.close()
        return keys, buttons, with_gallery
    finally:
        server.terminate()
        server.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=38_000)
    parser.add_argument("--clicks", type=int, default=15)
    parser.add_argument("--browser", action="store_true", help="also time clicks in Chromium against a served app")
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
    at.toggle(key="dg_sus_gallery").set_value(True)  # off by default on a large version
    at.run()  # the whole page again: the gallery shows the queue as it is now
    for _ in range(args.clicks):
        button = next(b for b in at.button if b.key and b.key.startswith(f"drop_{vid}_"))  # the review panel's own tree
        before = decisions()
        drop.append(timed(button.click().run))
        assert not at.exception, at.exception
        assert decisions() == before + 1, "a Drop click must record one decision"
    print(summary("AppTest: page rerun, no click", full))
    if keep:
        print(summary("AppTest: Keep on the current item", keep))
    print(summary("AppTest: Drop under a gallery item", drop))
    if args.browser:
        keys, buttons, with_gallery = browser_clicks(home, args.clicks)
        print(summary("browser: K pressed → new count on screen", keys))
        print(summary("browser: Keep clicked → new count on screen", buttons))
        print(summary("browser: K pressed, gallery shown", with_gallery))
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
