"""The shared basics: atomic writes, the JSON converter, usable cores, the slice rule, run statuses."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.atomic import atomic_write, atomic_write_json
from core.data.slices import MAX_SLICE_VALUES, MISSING, slice_columns, slice_values
from core.hardware import usable_cores
from core.jsonable import finite_or_none, to_jsonable
from core.store import ACTIVE, ENDED, WORKING, RunStatus


def test_to_jsonable_converts_numpy_and_nulls_every_non_finite_number():
    obj = {
        "a": np.array([1.5, np.nan, np.inf]),
        "b": np.int64(3),
        "c": (np.float32(0.25), None),
        "d": Path("/x/y"),
        "e": np.bool_(True),
        7: "seven",
        "f": -math.inf,
    }
    assert to_jsonable(obj) == {"a": [1.5, None, None], "b": 3, "c": [0.25, None], "d": "/x/y", "e": True, "7": "seven", "f": None}
    json.dumps(to_jsonable(obj), allow_nan=False)  # strict JSON
    with pytest.raises(TypeError, match="cannot write object to JSON"):
        to_jsonable(object())
    assert finite_or_none("0.5") == 0.5 and finite_or_none(np.nan) is None and finite_or_none("x") is None


def test_atomic_write_leaves_the_old_file_and_no_temporary_when_writing_fails(tmp_path):
    target = tmp_path / "sub" / "file.json"
    atomic_write_json(target, {"v": 1})
    assert json.loads(target.read_text()) == {"v": 1}

    def half_then_fail(fh):
        fh.write(b'{"v": 2')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.json"]


def test_usable_cores_is_the_affinity_mask():
    import os

    want = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cores() == want >= 1


def test_one_slice_rule():
    n = 200
    meta = pd.DataFrame(
        {
            "domain": np.where(np.arange(n) % 4 == 0, "news", "web"),  # 2 values: a slice as it is
            "single": ["same"] * n,  # 1 value: not a slice
            "id": np.arange(n),  # an integer identifier: not a slice
            "score": np.linspace(0, 1, n),  # many floats: quartiles
            "file": [f"img_{i}.png" for i in range(n)],  # many strings: not a slice
            "missing": [None if i % 2 else "a" for i in range(n)],  # a missing value is a slice value
        }
    )
    cols = slice_columns(meta)
    assert list(cols) == ["domain", "score", "missing"]
    assert sorted(set(cols["domain"])) == ["news", "web"]
    assert len(set(cols["score"])) == 4 and pd.Series(cols["score"]).value_counts().tolist() == [50, 50, 50, 50]
    assert sorted(set(cols["missing"])) == [MISSING, "a"]
    many = pd.Series(np.arange(MAX_SLICE_VALUES) % MAX_SLICE_VALUES)
    assert slice_values(many) is not None  # exactly MAX_SLICE_VALUES distinct values: still as they are
    assert len(set(slice_values(many))) == MAX_SLICE_VALUES


def test_run_status_values_are_what_the_schema_allows(tmp_path):
    from core.store import Store

    Store(tmp_path)
    con = sqlite3.connect(tmp_path / "gapscope.db")
    sql = con.execute("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
    allowed = sql.split("CHECK (status IN (")[1].split(")")[0].replace("'", "").replace(" ", "").split(",")
    stored = set(RunStatus) - {RunStatus.LOST}  # "lost" is what readers see, never stored
    assert sorted(allowed) == sorted(s.value for s in stored)
    assert set(ACTIVE) | set(ENDED) == stored and not set(ACTIVE) & set(ENDED)
    assert not RunStatus.LOST.active and not RunStatus.LOST.has_worker and RunStatus.LOST.icon == "👻"
    assert set(WORKING) < set(ACTIVE) and RunStatus.QUEUED not in WORKING
    assert RunStatus.STOPPING.active and not RunStatus.FAILED.active and RunStatus.RUNNING.has_worker
    assert RunStatus("finished") == "finished" and RunStatus.FINISHED.icon == "✅"


def test_risk_coverage_axis_shows_decimals_when_the_risks_are_small():
    import numpy as np

    from core import charts

    coverage = np.linspace(0.1, 1.0, 10)
    small = charts.risk_coverage(coverage, np.linspace(0.0, 0.012, 10), point=(0.8, 0.0), label="≥ 0.70")
    large = charts.risk_coverage(coverage, np.linspace(0.0, 0.4, 10))
    assert small.layout.yaxis.tickformat == ".1%"
    assert large.layout.yaxis.tickformat == ".0%"
    assert [t.name for t in small.data] == ["risk", "operating point"]


def test_class_chart_threshold_lines_are_labelled_or_bare_never_placeholder_text():
    import numpy as np

    from core import charts
    from core.data.profile import balance

    names = [f"c{i}" for i in range(6)]
    apart = charts.class_distribution(names, balance(np.array([900, 700, 300, 40, 8, 2]), thresholds=(500, 20)))
    assert sorted(a.text for a in apart.layout.annotations) == ["head > 500", "tail < 20"]
    # thresholds close together on a linear axis (VADER's): the lines stay, with no annotation at
    # all (a position without text makes Plotly write "new text")
    close = charts.class_distribution(names, balance(np.array([9000, 8000, 7000, 6000, 5000, 4000]), thresholds=(5000, 4500)))
    assert len(close.layout.shapes) == 2 and len(close.layout.annotations) == 0


def test_log_axes_label_whole_counts_not_a_decades_digits():
    from core import charts

    assert charts.log_ticks([14, 180]) == {"tickvals": [10, 20, 50, 100, 200], "ticktext": ["10", "20", "50", "100", "200"]}
    assert charts.log_ticks([3, 6000])["ticktext"] == ["2", "5", "10", "20", "50", "100", "200", "500", "1,000", "2,000", "5,000", "10,000"]
    assert charts.log_ticks([0, float("nan")]) == {}  # nothing positive: Plotly's own ticks
    fig = charts.counts_before_after({"a": 180.0, "b": 90.0}, {"a": 180.0, "b": 14.0})
    assert list(fig.layout.yaxis.tickvals) == [10, 20, 50, 100, 200]
