"""Selection (core.select): keep x % by a score, the keep-x % sweep, and label-next with its loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data import Dataset
from core.data.demos import load_digits_8x8
from core.errors import DataError
from core.report.html import build_report
from core.select import active as A
from core.select import keep as K
from core.select.sweep import make_sweep, selection_records, summary_words, sweep_configs, sweep_summary, sweep_table
from core.store import RunFiles
from core.train.worker import train_run
from tests.test_train import _run

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


def toy(n_per_class=(60, 30, 10), seed=0) -> Dataset:
    """A table of three classes (60 / 30 / 10 train items each, plus val and test)."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(3 * n, c) for c, n in enumerate(n_per_class)])  # train = a third of each
    x = rng.normal(size=(len(y), 2)) + y[:, None]
    split = np.tile([0, 1, 2], len(y) // 3)[: len(y)]
    order = np.argsort(y * 10 + split, kind="stable")  # train rows of each class together
    return Dataset("toy", "tabular", pd.DataFrame(x[order], columns=["a", "b"]), y[order], ["a", "b", "c"], split[order])


def dyn_for(ds: Dataset, el2n: np.ndarray, conf: np.ndarray | None = None, var_scale: np.ndarray | None = None) -> dict:
    """Dynamics of ``ds``'s train items with the given EL2N per item (two epochs)."""
    rows = np.flatnonzero(ds.split == 0)
    n = len(rows)
    conf = np.full(n, 0.8) if conf is None else conf
    spread = np.zeros(n) if var_scale is None else var_scale
    return {
        "rows": rows,
        "p_given": np.stack([conf - spread, conf + spread]).astype(np.float16),
        "right": np.stack([conf > 0.5, conf > 0.5]).astype(np.float16),
        "el2n": np.stack([el2n, el2n]).astype(np.float16),
        "forgetting": np.zeros(n, np.int32),
        "presentations": np.full(n, 2, np.int32),
    }


def test_quotas_keep_each_class_share_or_split_evenly():
    assert K._quotas(np.array([60, 30, 10]), 30, "proportional").tolist() == [18, 9, 3]
    assert K._quotas(np.array([60, 30, 10]), 31, "proportional").sum() == 31
    assert K._quotas(np.array([60, 30, 10]), 30, "equal").tolist() == [10, 10, 10]
    assert K._quotas(np.array([60, 30, 4]), 30, "equal").tolist() == [13, 13, 4]  # a small class gives what it has


def test_random_keeps_every_held_out_row_and_each_class_share():
    ds = toy()
    rows = K.keep_rows(ds, K.KeepRecipe("random", 0.3, seed=1))
    assert set(np.flatnonzero(ds.split != 0)) <= set(rows)
    kept_train = rows[ds.split[rows] == 0]
    assert np.bincount(ds.labels[kept_train]).tolist() == [18, 9, 3]
    assert np.array_equal(rows, K.keep_rows(ds, K.KeepRecipe("random", 0.3, seed=1)))
    assert not np.array_equal(rows, K.keep_rows(ds, K.KeepRecipe("random", 0.3, seed=2)))


def test_el2n_keeps_the_highest_scores_of_each_class():
    ds = toy()
    train = np.flatnonzero(ds.split == 0)
    e = np.linspace(0, 1, len(train))
    rows = K.keep_rows(ds, K.KeepRecipe("el2n", 0.5, run_id=1), dyn_for(ds, e))
    kept = np.isin(train, rows)
    for c in range(3):
        mine = ds.labels[train] == c
        assert kept[mine].sum() == round(mine.sum() / 2)
        assert e[mine & kept].min() > e[mine & ~kept].max()  # the upper half of the class


def test_ccs_drops_the_hardest_and_spreads_over_every_difficulty():
    ds = toy((300, 300, 300))
    train = np.flatnonzero(ds.split == 0)
    rng = np.random.default_rng(0)
    e = rng.random(len(train)) ** 3  # most items easy, a few hard
    rows = K.keep_rows(ds, K.KeepRecipe("ccs", 0.2, hard_cut=0.1, run_id=1), dyn_for(ds, e))
    kept = np.isin(train, rows)
    assert kept.sum() == 180
    e = e.astype(np.float16).astype(float)  # as the dynamics keep it
    y = ds.labels[train]
    hardest = np.zeros(len(train), dtype=bool)
    for c in range(3):  # each class's hardest tenth is set aside
        mine = np.flatnonzero(y == c)
        hardest[mine[np.argsort(-e[mine], kind="stable")[:30]]] = True
    assert not (kept & hardest).any()
    # coverage: the kept items span the difficulty range far more evenly than the items themselves
    assert np.median(e[kept]) > np.median(e) + 0.05
    by_rank = K.keep_rows(ds, K.KeepRecipe("el2n", 0.2, run_id=1), dyn_for(ds, e))
    assert e[np.isin(train, by_rank)].min() > e[kept].min()  # the rank score keeps only the hard end


def test_easy_ambiguous_drops_the_least_confident_items_first():
    ds = toy((100, 100, 100))
    train = np.flatnonzero(ds.split == 0)
    conf = np.linspace(0.05, 0.95, len(train))
    var = np.linspace(0.04, 0.0, len(train))  # the least confident are also the most variable
    rows = K.keep_rows(ds, K.KeepRecipe("easy_ambiguous", 0.5, hard_cut=0.2, run_id=1), dyn_for(ds, np.zeros(len(train)), conf, var))
    kept, y = np.isin(train, rows), ds.labels[train]
    for c in range(3):  # each class's least confident fifth is set aside; the most variable of the rest kept
        mine = y == c
        low = conf < np.quantile(conf[mine], 0.2)
        assert not kept[mine & low].any() and kept[mine].sum() == 50
        assert conf[mine & kept].max() < np.quantile(conf[mine], 0.75)


def test_bad_recipes_and_runs_get_clear_errors(store):
    ds = toy()
    with pytest.raises(DataError, match="share to keep"):
        K.KeepRecipe("random", 0.0)
    with pytest.raises(DataError, match="pick the run"):
        K.KeepRecipe("el2n", 0.3)
    with pytest.raises(DataError, match="score must be one of"):
        K.KeepRecipe("loss", 0.3)
    other = dyn_for(ds, np.zeros(100))
    other["rows"] = other["rows"] + 10_000
    with pytest.raises(DataError, match="another version"):
        K.keep_rows(ds, K.KeepRecipe("el2n", 0.3, run_id=3), other)
    with pytest.raises(DataError, match="no training dynamics"):
        K.keep_rows(ds, K.KeepRecipe("el2n", 0.3, run_id=3), None)


def test_a_sweep_saves_kept_versions_trains_them_and_reads_the_results(store, home):
    ds = load_digits_8x8().dataset
    vid = store.save_dataset(ds, source="upload:digits")
    run_id, status = _run(store, version_id=vid, epochs=3)
    assert status == "finished" and RunFiles(run_id, home=home).dynamics() is not None
    ids = make_sweep(store, vid, run_id, ["el2n", "ccs"], [0.3], seeds=[0])
    assert len(ids) == 3
    infos = [store.version(i) for i in ids]
    assert [i.params["keep"]["score"] for i in infos] == ["random", "el2n", "ccs"]
    assert all(i.parent_id == vid and i.kind == "select" for i in infos)
    n_train = int((ds.split == 0).sum())
    for i in ids:
        kept = store.load_dataset(i)
        assert int((kept.split == 0).sum()) == round(0.3 * n_train)
        assert int((kept.split != 0).sum()) == int((ds.split != 0).sum())
        assert set(kept.item_ids()) <= set(range(len(ds)))
    configs = sweep_configs(store, run_id, ids, epochs=2)
    assert [c.version_id for c in configs] == ids and all(c.epochs == 2 for c in configs)
    assert configs[1].name.startswith("keep 30% el2n")
    for cfg in configs:
        rid = store.create_run(cfg.version_id, cfg.to_dict())
        assert train_run(store, rid) == "finished"
    table = sweep_table(store, vid)
    assert sorted(table["score"]) == ["ccs", "el2n", "random"] and (table["fraction"] == 0.3).all()
    assert table["macro_f1"].between(0, 1).all() and table["ece"].between(0, 1).all()
    summary = sweep_summary(table)
    assert set(summary["score"]) == {"ccs", "el2n", "random"}
    rnd = summary.set_index("score").loc["random"]
    assert rnd["macro_f1_vs_random"] == 0.0
    el2n = summary.set_index("score").loc["el2n"]
    assert el2n["macro_f1_vs_random"] == pytest.approx(el2n["macro_f1"] - rnd["macro_f1"])

    # Compare and the report: the runs' recipes and the sweep they belong to
    el2n_run = int(table.loc[table["score"] == "el2n", "run"].iloc[0])
    kept, sweeps = selection_records(store, [run_id, el2n_run])
    assert kept["run"].tolist() == [el2n_run] and kept["kept"].iloc[0] == "30% by el2n" and kept["scored by run"].iloc[0] == run_id
    assert list(sweeps) == [vid] and set(sweeps[vid]["score"]) == {"ccs", "el2n", "random"}
    words = summary_words(sweeps[vid]).set_index("score")
    assert words.loc["random", "vs random"] == "+0.000" and words.loc["el2n", "share kept"] == "30%"
    doc = build_report(store, [run_id, el2n_run])
    assert "<section id='selection'>" in doc and f"Keep-x % sweep of version {vid}" in doc and "30% by el2n" in doc
    assert selection_records(store, [])[0].empty


def test_summary_gives_the_mean_sd_and_interval_over_seeds():
    table = pd.DataFrame(
        {
            "score": ["random"] * 3 + ["el2n"] * 3,
            "fraction": [0.3] * 6,
            "seed": [0, 1, 2] * 2,
            "macro_f1": [0.5, 0.6, 0.7, 0.7, 0.8, 0.9],
            "hallucination_rate": [0.1] * 6,
            "ece": [0.05] * 6,
        }
    )
    s = sweep_summary(table).set_index("score")
    assert s.loc["el2n", "runs"] == 3 and s.loc["el2n", "macro_f1"] == pytest.approx(0.8)
    assert s.loc["el2n", "macro_f1_sd"] == pytest.approx(0.1)
    assert s.loc["el2n", "macro_f1_low"] == pytest.approx(0.8 - 1.96 * 0.1 / np.sqrt(3))
    assert s.loc["el2n", "macro_f1_vs_random"] == pytest.approx(0.2)


# ---------------------------------------------------------------- label next


def two_blobs(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 2)) + np.c_[y * 4.0, np.zeros(n)]
    return x, y


def test_margin_and_entropy_pick_the_items_on_the_boundary():
    x, y = two_blobs()
    lab = np.r_[np.flatnonzero(y == 0)[:10], np.flatnonzero(y == 1)[:10]]
    pool = np.setdiff1d(np.arange(len(y)), lab)
    for strategy in ("margin", "entropy"):
        pick = A.propose(strategy, x[pool], 10, x_labelled=x[lab], y_labelled=y[lab])
        assert len(set(pick)) == 10
        # the picked items sit between the blobs (x ≈ 2), the rest spread around 0 and 4
        assert np.abs(x[pool[pick], 0] - 2).mean() < 0.6 * np.abs(x[pool, 0] - 2).mean()
    with pytest.raises(DataError, match="labelled items"):
        A.propose("margin", x[pool], 5)
    with pytest.raises(DataError, match="two classes"):
        A.propose("entropy", x[pool], 5, x_labelled=x[:3], y_labelled=np.zeros(3))


def test_diverse_margin_spreads_close_calls_that_margin_takes_from_one_spot():
    rng = np.random.default_rng(4)
    ys = rng.uniform(-10, 10, size=200)
    x_lab = np.c_[np.r_[np.full(100, -2.0), np.full(100, 2.0)], ys]
    y_lab = np.r_[np.zeros(100, int), np.ones(100, int)]
    dense = np.c_[rng.normal(scale=0.01, size=30), rng.normal(scale=0.01, size=30)]  # 30 near-copies of one close call
    spread = np.c_[rng.choice([-1, 1], 170) * rng.uniform(0.2, 0.6, 170), rng.uniform(-10, 10, 170)]  # close calls all along the border
    pool = np.r_[dense, spread]
    margin = A.propose("margin", pool, 10, x_labelled=x_lab, y_labelled=y_lab, seed=0)
    diverse = A.propose("diverse_margin", pool, 10, x_labelled=x_lab, y_labelled=y_lab, seed=0)
    assert (margin < 30).sum() == 10  # margin spends every label on the one spot
    assert len(set(diverse.tolist())) == 10 and (diverse < 30).sum() <= 2
    assert np.ptp(pool[diverse, 1]) > 12  # the picks run along the border
    assert diverse[0] < 30  # the closest call still comes first
    assert len(A.propose("diverse_margin", pool[:12], 10, x_labelled=x_lab, y_labelled=y_lab)) == 10  # a pool near k


def test_kcenter_covers_every_cluster_before_a_second_pick_in_any():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 20]], float)
    x = np.concatenate([c + rng.normal(scale=0.3, size=(50, 2)) for c in centres])
    cluster = np.repeat(np.arange(5), 50)
    pick = A.propose("kcenter", x, 5, seed=3)
    assert sorted(cluster[pick]) == [0, 1, 2, 3, 4]
    # with cluster 0 labelled already, the next four picks are the four other clusters
    pick = A.propose("kcenter", x[50:], 4, x_labelled=x[:50])
    assert sorted(cluster[50:][pick]) == [1, 2, 3, 4]


def test_the_loop_buys_labels_and_margin_beats_random_picks_on_digits():
    ds = load_digits_8x8().dataset
    x = ds.items.reshape(len(ds), -1).astype(float)
    train, test = ds.split != 2, ds.split == 2
    curves = A.rounds(x[train], ds.labels[train], x[test], ds.labels[test], strategy="margin", start=30, k=30, n_rounds=8, seed=0)
    assert set(curves["picker"]) == {"margin", "random"}
    assert curves.groupby("picker")["labels"].apply(list).to_dict() == {p: list(range(30, 271, 30)) for p in ("margin", "random")}
    rnd, mar = (curves[curves.picker == p] for p in ("random", "margin"))
    assert rnd["accuracy"].iloc[0] == mar["accuracy"].iloc[0]  # the same start
    final = float(rnd["accuracy"].iloc[-1])
    reached = A.labels_to_reach(mar, final)
    assert reached is not None and reached < 270
    with pytest.raises(DataError, match="pool holds"):
        A.rounds(x[:50], ds.labels[:50], x[test], ds.labels[test], strategy="margin", start=30, k=30, n_rounds=2)


def test_labels_given_in_the_queue_become_a_new_version(store):
    ds = toy()
    labels = ds.labels.copy()
    pool = np.flatnonzero(ds.split == 0)[:5]
    labels[pool] = -1
    vid = store.save_dataset(Dataset("pool", "tabular", ds.items, labels, ds.class_names, ds.split), source="upload:pool.csv")
    new = A.labelled_version(store, vid, {int(pool[0]): 2, int(pool[1]): 0})
    out = store.load_dataset(new)
    assert out.labels[pool[0]] == 2 and out.labels[pool[1]] == 0 and (out.labels[pool[2:]] == -1).all()
    assert store.version(new).params["labelled"] == {str(pool[0]): 2, str(pool[1]): 0}
    with pytest.raises(DataError, match="unlabelled pool"):
        A.labelled_version(store, vid, {int(np.flatnonzero(ds.split == 1)[0]): 1})
    with pytest.raises(DataError, match="no labels"):
        A.labelled_version(store, vid, {})


def test_a_target_versions_items_labelled_in_the_queue_join_train_and_held_out_items_are_refused(store):
    ds = toy()
    vid = store.save_dataset(ds, source="upload:toy.csv")
    fresh = toy(seed=5)  # new items: another upload with the same columns and classes
    new_items = Dataset("new", "tabular", fresh.items, np.full(len(fresh), -1), fresh.class_names, np.zeros(len(fresh), np.int8))
    tid = store.save_dataset(new_items, source="upload:new.csv")
    out_id = A.labelled_from_target(store, vid, tid, {3: 2, 7: 0})
    out = store.load_dataset(out_id)
    assert len(out) == len(ds) + 2 and out.labels[-2:].tolist() == [2, 0] and (out.split[-2:] == 0).all()
    assert out.items.iloc[-2:].to_numpy().tolist() == fresh.items.iloc[[3, 7]].to_numpy().tolist()
    assert out.item_ids()[: len(ds)].tolist() == list(range(len(ds)))
    assert store.version(out_id).params["labelled_from"] == tid

    # a target made of this version's own test rows: labelling them into train would leak them
    test_rows = np.flatnonzero(ds.split == 2)[:5]
    own = ds.subset(test_rows)
    own.meta["source_item"] = test_rows
    own_id = store.save_dataset(own, source="shift:1", dataset_id=store.version(vid).dataset_id, parent_id=vid, kind="shift")
    with pytest.raises(DataError, match="leak the held-out data"):
        A.labelled_from_target(store, vid, own_id, {0: 1})
    with pytest.raises(DataError, match="outside it"):
        A.labelled_from_target(store, vid, tid, {10_000: 1})
