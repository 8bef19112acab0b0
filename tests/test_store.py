"""The SQLite store: schema and migrations, versions written once, runs, metrics, predictions."""

from __future__ import annotations

import contextlib
import sqlite3

import numpy as np
import pandas as pd
import pytest

from core.data import Dataset
from core.store import SCHEMA_VERSION, Store
from core.store import schema as store_module


def _image_ds(n=12) -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset("img", "image", rng.integers(0, 256, (n, 6, 5, 3), dtype=np.uint8), np.arange(n) % 3, ["a", "b", "c"], np.zeros(n))


def _text_ds() -> Dataset:
    meta = pd.DataFrame({"domain": ["x", "y", "x", "y"], "agreement": [1.0, 0.5, 0.75, np.nan]})
    return Dataset(
        "txt", "text", np.array(["héllo", "", "a\tb", "ünïcode ✓"], dtype=object), [0, 1, 1, 0], ["neg", "pos"], [0, 0, 1, 2], meta
    )


def _tab_ds() -> Dataset:
    items = pd.DataFrame({"f1": [1.5, 2.0, np.nan], "f2": ["u", "v", "u"]})
    return Dataset("tab", "tabular", items, [1, 0, 1], ["no", "yes"], [0, 2, 1])


def _schema_version(home) -> int:
    with contextlib.closing(sqlite3.connect(home / "gapscope.db")) as con:
        return con.execute("PRAGMA user_version").fetchone()[0]


def test_new_store_is_wal_with_current_schema(store, home):
    assert _schema_version(home) == SCHEMA_VERSION >= 1
    con = sqlite3.connect(home / "gapscope.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"datasets", "dataset_versions", "runs", "metrics", "predictions"} <= tables


@pytest.mark.parametrize("make", [_image_ds, _text_ds, _tab_ds])
def test_dataset_round_trip(store, make):
    ds = make()
    vid = store.save_dataset(ds, source="upload:x", warnings=["w1"], skipped=[("bad.png", "corrupt")])
    back = store.load_dataset(vid)
    assert back.modality == ds.modality and back.class_names == ds.class_names and back.name == ds.name
    np.testing.assert_array_equal(back.labels, ds.labels)
    np.testing.assert_array_equal(back.split, ds.split)
    if ds.modality == "image":
        np.testing.assert_array_equal(back.items, ds.items)
        assert back.items.dtype == np.uint8
    elif ds.modality == "text":
        assert list(back.items) == list(ds.items)
        pd.testing.assert_frame_equal(back.meta, ds.meta, check_dtype=False)
    else:
        pd.testing.assert_frame_equal(back.items, ds.items, check_dtype=False)
    info = store.version(vid)
    assert info.warnings == ["w1"] and info.skipped == [("bad.png", "corrupt")] and info.n_items == len(ds)


def test_versions_are_new_rows_and_folders_never_edits(store, home):
    ds = _image_ds()
    v1 = store.save_dataset(ds, source="upload:img")
    cleaned = ds.subset(np.arange(6))
    v2 = store.save_dataset(
        cleaned, source="upload:img", dataset_id=store.version(v1).dataset_id, parent_id=v1, kind="clean", note="dropped 6"
    )
    assert [v.id for v in store.versions()] == [v1, v2]
    assert store.version(v2).parent_id == v1 and store.version(v2).label.endswith("(clean: dropped 6)")
    assert len(store.load_dataset(v1)) == 12 and len(store.load_dataset(v2)) == 6  # the parent is intact
    assert store.version(v1).folder != store.version(v2).folder


def test_failed_save_leaves_no_row_and_no_folder(store, home):
    bad = Dataset("x", "text", np.array(["a", "b"], dtype=object), [0, 1], ["a", "b"], [0, 0], pd.DataFrame({"label": [1, 2]}))
    with pytest.raises(ValueError, match="clash with reserved names"):
        store.save_dataset(bad, source="upload:x")
    assert store.versions() == []
    assert list((home / "versions").iterdir()) == []


def test_demo_sources_are_unique(store):
    vid = store.save_dataset(_tab_ds(), source="demo:tab")
    with pytest.raises(sqlite3.IntegrityError):
        store.save_dataset(_tab_ds(), source="demo:tab")
    assert len(store.versions()) == 1
    assert store.find_dataset("demo:tab") == store.version(vid).dataset_id and store.find_dataset("demo:nope") is None


def test_runs_metrics_and_predictions(store):
    vid = store.save_dataset(_tab_ds(), source="upload:t")
    run = store.create_run(vid, {"epochs": 2, "lr": 1e-3}, name="first")
    assert store.run(run).status == "queued" and store.run(run).config == {"epochs": 2, "lr": 1e-3}
    store.set_run_status(run, "running", pid=123, progress=0.5)
    assert store.run_counts() == {"running": 1}
    with pytest.raises(ValueError, match="unknown run fields"):
        store.set_run_status(run, None, colour="red")
    store.add_metrics(run, 10, "val", {"accuracy": 0.5, "ece": float("nan")}, epoch=1.0)
    store.add_metrics(run, 20, "val", {"accuracy": 0.75})
    m = store.metrics(run)
    assert m[["step", "name"]].values.tolist() == [[10, "accuracy"], [10, "ece"], [20, "accuracy"]]
    assert m["value"].isna().tolist() == [False, True, False]  # NaN is stored as NULL, not lost
    assert store.metrics(run, since_step=10)["step"].tolist() == [20]
    store.add_predictions(run, 10, "test", [0, 2], [1, 1], [1, 0], [0.9, 0.6])
    store.add_predictions(run, 20, "test", [0, 2], [1, 1], [1, 1], [0.95, 0.7])
    p = store.predictions(run)
    assert p.values.tolist() == [[0, 1, 1, 0.95], [2, 1, 1, 0.7]]  # the latest evaluation by default
    assert store.predictions(run, step=10)["pred"].tolist() == [1, 0]
    with pytest.raises(KeyError):
        store.create_run(999, {})


def test_a_relayed_metrics_write_sent_twice_is_stored_once(store):
    # core.runners.ray: after an app restart the relay sends again what was applied but not acknowledged
    run = store.create_run(store.save_dataset(_tab_ds(), source="upload:t"), {})
    assert store.add_metrics(run, 10, "val", {"accuracy": 0.5}, seq=3) is True
    assert store.add_metrics(run, 20, "val", {"accuracy": 0.6}, seq=7) is True
    for seq, step in ((3, 10), (7, 20), (5, 15)):  # sent again, or an older number: nothing stored
        assert store.add_metrics(run, step, "val", {"accuracy": 0.9}, seq=seq) is False
    assert store.add_metrics(run, 30, "val", {"accuracy": 0.7}, seq=8) is True
    assert store.metrics(run)[["step", "value"]].values.tolist() == [[10, 0.5], [20, 0.6], [30, 0.7]]
    other = store.create_run(store.runs()[0].version_id, {})
    assert store.add_metrics(other, 10, "val", {"accuracy": 0.1}, seq=3) is True  # numbers are per run
    assert store.add_metrics(other, 11, "val", {"accuracy": 0.2}) is True  # a local write has no number


def test_a_runs_row_and_metrics_are_read_at_one_moment(store, home, monkeypatch):
    from core.store import database

    vid = store.save_dataset(_tab_ds(), source="upload:t")
    run = store.create_run(vid, {}, name="r")
    store.set_run_status(run, "running", message="step 10")
    store.add_metrics(run, 10, "val", {"accuracy": 0.5})
    writer = Store(home)  # another connection: a worker writing while the page reads
    real = database.pd.read_sql_query

    def write_in_between(*args, **kwargs):
        writer.add_metrics(run, 20, "val", {"accuracy": 0.75})
        writer.set_run_status(run, "finished", message="done")
        return real(*args, **kwargs)

    monkeypatch.setattr(database.pd, "read_sql_query", write_in_between)
    row, metrics = store.run_with_metrics(run)
    assert row.status == "running" and metrics["step"].tolist() == [10]  # the row's moment, not a later one
    monkeypatch.setattr(database.pd, "read_sql_query", real)
    row, metrics = store.run_with_metrics(run)
    assert row.status == "finished" and metrics["step"].tolist() == [10, 20]
    with pytest.raises(KeyError):
        store.run_with_metrics(999)


def test_two_store_objects_share_state(home):
    a, b = Store(home), Store(home)
    vid = a.save_dataset(_tab_ds(), source="upload:t")
    assert [v.id for v in b.versions()] == [vid]


def test_migrations_upgrade_an_older_database_and_keep_its_data(home, monkeypatch):
    s = Store(home)
    vid = s.save_dataset(_tab_ds(), source="upload:t")
    extra = "ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT ''"
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, extra])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    upgraded = Store(home)
    assert _schema_version(home) == SCHEMA_VERSION + 1 and upgraded.home == home
    assert len(upgraded.load_dataset(vid)) == 3
    con = sqlite3.connect(home / "gapscope.db")
    assert "tags" in [r[1] for r in con.execute("PRAGMA table_info(runs)")]


def test_a_newer_database_is_refused_with_advice(home):
    Store(home)
    con = sqlite3.connect(home / "gapscope.db")
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    con.commit()
    con.close()
    with pytest.raises(RuntimeError, match="newer than this Gapscope"):
        Store(home)


def test_a_run_of_several_processes_holds_as_many_slots(store):
    vid = store.save_dataset(_image_ds(), source="upload:x.zip")
    wide = store.create_run(vid, {"version_id": vid, "processes": 2})
    narrow = store.create_run(vid, {"version_id": vid})
    assert store.claim_next_run(3).id == wide  # 2 of 3 slots
    assert store.claim_next_run(3).id == narrow  # the third
    store.set_run_status(wide, "finished")
    store.set_run_status(narrow, "finished")
    one = store.create_run(vid, {"version_id": vid})
    big = store.create_run(vid, {"version_id": vid, "processes": 4})
    assert store.claim_next_run(2).id == one
    assert store.claim_next_run(2) is None  # 4 slots do not fit beside the running one
    store.set_run_status(one, "finished")
    assert store.claim_next_run(2).id == big  # larger than the machine: it starts alone
    after = store.create_run(vid, {"version_id": vid})
    assert store.claim_next_run(2) is None  # the big run holds every slot of a 2-slot machine
    assert store.claim_next_run(8).id == after  # and 4 of 8
