"""The stakeholder report and the exports: parsed, every section found, nothing fetched from outside."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from core.compare.intervals import Comparison, Interval, verdict_of
from core.compare.one_run import checkpoint_line
from core.data.demos import load_digits_8x8
from core.metrics.results import RunResults
from core.mitigate.settings import LossSettings, Mitigations
from core.report.exports import configs_json, metrics_csv, metrics_parquet
from core.report.html import SECTIONS, build_report, summary_sentences
from core.train.config import RunConfig
from core.train.worker import train_run

pytestmark = pytest.mark.timeout(300)


class Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.external: list[str] = []
        self.scripts_with_src = 0
        self.plots = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id", ""))
        if tag == "script" and a.get("src"):
            self.scripts_with_src += 1
        if tag == "div" and "plotly-graph-div" in (a.get("class") or ""):
            self.plots += 1
        for key in ("src", "href", "data", "poster"):
            if re.match(r"\s*(https?:)?//", a.get(key) or ""):
                self.external.append(f"{tag} {key}={a[key]}")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from core.store import Store

    store = Store(tmp_path_factory.mktemp("home"))
    vid = store.save_dataset(load_digits_8x8().dataset, source="demo:digits")
    ids = []
    for name, m in (("baseline", Mitigations()), ("smoothed", Mitigations(loss=LossSettings(label_smoothing=0.1)))):
        cfg = RunConfig(version_id=vid, model="small_cnn", epochs=2, batch_size=64, lr=3e-3, seed=0, device="cpu", mitigations=m)
        run = store.create_run(vid, cfg.to_dict(), name=name)
        assert train_run(store, run) == "finished", store.run(run).message
        ids.append(run)
    return store, ids


def test_the_report_has_every_section_and_fetches_nothing(two_runs):
    store, ids = two_runs
    doc = build_report(store, ids, title="Digits: smoothing vs baseline")
    parsed = Parsed()
    parsed.feed(doc)
    assert parsed.sections == list(SECTIONS)
    assert parsed.scripts_with_src == 0 and parsed.external == []
    assert not re.search(r"@import|url\(\s*['\"]?https?://", doc)  # no stylesheet from elsewhere
    assert parsed.plots >= 4  # class distribution, curves, recall, reliability
    summary = doc[doc.index("id='summary'") : doc.index("id='dataset'")]
    assert "#1 · baseline answered" in summary and "#2 · smoothed" in summary and "hallucination rate" in summary
    assert "loss: label smoothing ε" in doc and "Δ #2 · smoothed" in doc  # settings in words
    # the chart's head / medium / tail colours with their rule in words (digits: ~145 train items a class)
    dataset = doc[doc.index("id='dataset'") : doc.index("id='diagnosis'")]
    assert "head: more than 100 train items; medium: 20–100; tail: fewer than 20" in dataset and "10 head · 0 medium · 0 tail" in dataset
    # which evaluation each run is read at, in the words the pages use
    for r in ids:
        res = RunResults(store, r)
        assert f"{res.row.name}</b>: {checkpoint_line(res)}</li>" in doc and "the best val macro-F1" in checkpoint_line(res)
    # a change is coloured only where its interval excludes zero
    cells = re.findall(r'<td class="(better|worse)">([+-]\d\.\d+) \[([+-]\d\.\d+), ([+-]\d\.\d+)\]</td>', doc)
    assert all(float(lo) > 0 or float(hi) < 0 for _, _, lo, hi in cells)
    assert doc.count('class="better"') + doc.count('class="worse"') == len(cells)
    assert re.search(r"<td>[+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]</td>", doc) or cells  # intervals shown
    last = build_report(store, ids, checkpoint="last")
    assert all(f"test scores at step {RunResults(store, r).eval_steps()[-1]}, the last evaluation" in last for r in ids)


def _iv(metric, a, b, low, high):
    return Interval(metric, a, b, b - a, low, high, verdict_of(metric, low, high))


def test_the_summary_says_cuts_or_raises_only_where_the_interval_excludes_zero(two_runs):
    store, ids = two_runs
    results = [RunResults(store, r) for r in ids]
    table = pd.DataFrame({"#1 · a": [0.100, 0.80, 0.05], "#2 · b": [0.093, 0.81, 0.04]}, index=["hallucination_rate", "macro_f1", "ece"])
    unsure = {"hallucination_rate": _iv("hallucination_rate", 0.1, 0.093, -0.02, 0.006), "macro_f1": _iv("macro_f1", 0.8, 0.81, -0.01, 0.03),
              "ece": _iv("ece", 0.05, 0.04, -0.02, 0.001)}  # fmt: skip
    said = summary_sentences(results, table, {"#2 · b": Comparison(unsure, None)})[-1]
    assert "no clear difference in the hallucination rate: 9.3% (-0.7 points; 95 % interval -2.0 to +0.6 points)" in said
    assert not re.search(r"\b(cuts|raises|better|worse)\b", said)
    sure = {**unsure, "hallucination_rate": _iv("hallucination_rate", 0.1, 0.093, -0.012, -0.002)}
    said = summary_sentences(results, table, {"#2 · b": Comparison(sure, None)})[-1]
    assert said.startswith("#2 · b cuts the hallucination rate to 9.3%") and "macro-F1 0.810 (+0.010, no clear difference)" in said
    none = summary_sentences(results, table, {"#2 · b": Comparison({}, None, "no interval: the runs share no test items")})[-1]
    assert "share no test items" in none and not re.search(r"\b(cuts|raises|better|worse)\b", none.split("(no interval")[0])


def test_a_single_run_report_and_the_exports(two_runs):
    store, ids = two_runs
    parsed = Parsed()
    parsed.feed(build_report(store, ids[:1]))
    assert parsed.sections == list(SECTIONS) and parsed.external == []
    csv = pd.read_csv(io.BytesIO(metrics_csv(store, ids)))
    parquet = pd.read_parquet(io.BytesIO(metrics_parquet(store, ids)))
    assert list(csv.columns) == ["run_id", "run", "step", "epoch", "split", "name", "value"]
    assert len(csv) == len(parquet) == sum(len(store.metrics(r)) for r in ids)
    assert set(csv["run_id"]) == set(ids) and {"test", "val", "train", "test_ts"} <= set(csv["split"])
    configs = json.loads(configs_json(store, ids))
    assert configs[str(ids[1])]["config"]["mitigations"]["loss"]["label_smoothing"] == 0.1
