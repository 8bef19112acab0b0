"""The stakeholder report and the exports: parsed, every section found, nothing fetched from outside."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from core.data.demos import load_digits_8x8
from core.mitigate.settings import LossSettings, Mitigations
from core.report.exports import configs_json, metrics_csv, metrics_parquet
from core.report.html import SECTIONS, build_report
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
    assert "label_smoothing" in doc and "Δ #2 · smoothed" in doc
    # the chart's head / medium / tail colours with their rule in words (digits: ~145 train items a class)
    dataset = doc[doc.index("id='dataset'") : doc.index("id='diagnosis'")]
    assert "head: more than 100 train items; medium: 20–100; tail: fewer than 20" in dataset and "10 head · 0 medium · 0 tail" in dataset
    assert 'class="better"' in doc or 'class="worse"' in doc  # deltas coloured


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
