"""The Runs page's list: what a run is and how far it got come first, long text is cut to a width."""

from __future__ import annotations

import json

import numpy as np
from streamlit.testing.v1 import AppTest

from core.data import Dataset
from core.store import Store
from core.store.status import RunStatus


def _table() -> None:
    from ui.run_table import run_table

    run_table()


def test_key_columns_come_first_and_long_text_is_cut(home):
    store = Store(home)
    long_name = "Fashion-MNIST with a name long enough to push every column after it off a laptop screen"
    ds = Dataset(long_name, "text", np.array(["a", "b", "c", "d"], dtype=object), [0, 1, 0, 1], ["x", "y"], [0, 0, 2, 2])
    vid = store.save_dataset(ds, source="test")
    run = store.create_run(vid, {}, name="baseline")
    store.set_run_status(run, RunStatus.FINISHED, progress=1.0, message="finished")
    at = AppTest.from_function(_table, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0]
    shown = list(table.proto.column_order)
    assert shown == ["run", "name", "status", "progress", "message", "dataset", "started"]
    assert sorted(shown) == sorted(table.value.columns)  # every column of the list is shown, none twice
    assert table.value.loc[0, "dataset"].startswith(long_name) and table.value.loc[0, "status"] == "✅ finished"
    config = json.loads(table.proto.columns)
    assert {c: config[c]["width"] for c in ("run", "name", "status", "progress", "dataset")} == {
        "run": "small", "name": "medium", "status": "small", "progress": "small", "dataset": "medium",
    }  # fmt: skip
    assert "whole" in config["name"]["help"] and "whole" in config["dataset"]["help"]
