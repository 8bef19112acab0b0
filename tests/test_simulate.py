"""The simulator: exact counts under seeds, the truth kept, only train touched, clear refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from core.data.dataset import Dataset, content_hashes
from core.data.slices import slice_columns
from core.errors import DataError
from core.simulate.corrupt import plan_recipe, simulate
from core.simulate.recipe import Recipe
from core.simulate.versions import recipe_of, save_simulated

PER_CLASS = {"train": 200, "val": 20, "test": 30}


def _five_classes() -> Dataset:
    """5 classes; per class 200 train, 20 val, 30 test items (distinct 4×4 images); a 'domain' column."""
    labels, split = [], []
    for s, n in enumerate(PER_CLASS.values()):
        for c in range(5):
            labels += [c] * n
            split += [s] * n
    n = len(labels)
    rng = np.random.default_rng(0)
    items = rng.integers(0, 256, size=(n, 4, 4), dtype=np.uint8)
    items[:, 0, 0] = np.arange(n) % 256
    items[:, 0, 1] = np.arange(n) // 256  # every image distinct
    meta = pd.DataFrame({"domain": np.where(np.arange(n) % 4 == 0, "news", "web")})
    return Dataset("five", "image", items, labels, ["a", "b", "c", "d", "e"], split, meta)


def _train_counts(ds: Dataset) -> list[int]:
    return np.bincount(ds.labels[ds.split == 0], minlength=ds.n_classes).tolist()


def test_long_tail_and_step_give_exact_counts():
    ds = _five_classes()
    lt = simulate(ds, Recipe(imbalance="long_tail", ratio=100))
    # class k keeps 100^(-k/4) of 200: 200, 63.2, 20, 6.3, 2
    assert _train_counts(lt) == [200, 63, 20, 6, 2]
    step = simulate(ds, Recipe(imbalance="step", ratio=10, minority_share=0.4))
    assert _train_counts(step) == [200, 200, 200, 20, 20]
    ordered = plan_recipe(ds, Recipe(imbalance="long_tail", ratio=100, order=("e", "d")))
    assert ordered.counts_after.tolist() == [20, 6, 2, 63, 200]  # e first, then d, then the rest in class order
    assert ordered.counts_before.tolist() == [200] * 5


def test_val_and_test_are_untouched_and_the_truth_is_kept():
    ds = _five_classes()
    out = simulate(ds, Recipe(imbalance="long_tail", ratio=10, noise_rate=0.3, duplicate_share=0.1, seed=3))
    for s in (1, 2):
        a, b = ds.split == s, out.split == s
        assert np.array_equal(ds.items[a], out.items[b]) and np.array_equal(ds.labels[a], out.labels[b])
        assert not out.meta["sim_noisy"].to_numpy()[b].any()
    src = out.meta["source_item"].to_numpy()
    assert np.array_equal(out.meta["sim_true_label"].to_numpy(), ds.labels[src])  # the truth is the parent's label
    assert np.array_equal(out.meta["sim_noisy"].to_numpy(), out.labels != ds.labels[src])
    assert np.array_equal(out.items, ds.items[src])


def test_noise_is_exact_per_class_stays_among_train_classes_and_follows_the_seed():
    ds = _five_classes()
    recipe = Recipe(drop_classes=("e",), noise_rate=0.3, seed=1)
    out = simulate(ds, recipe)
    train = out.split == 0
    true, given = out.meta["sim_true_label"].to_numpy()[train], out.labels[train]
    for c in range(4):
        assert int((given[true == c] != c).sum()) == 60  # 30 % of 200, exactly
    assert 4 not in set(given.tolist())  # no item was relabelled into the dropped class
    again = simulate(ds, recipe)
    assert np.array_equal(again.labels, out.labels)
    other = simulate(ds, Recipe(drop_classes=("e",), noise_rate=0.3, seed=2))
    assert not np.array_equal(other.labels, out.labels)
    pair = simulate(ds, Recipe(noise_kind="pairflip", noise_rate=0.25))
    t, g = pair.meta["sim_true_label"].to_numpy()[pair.split == 0], pair.labels[pair.split == 0]
    assert ((g != t) == (g == (t + 1) % 5)).all() and int((g != t).sum()) == 250


def test_dropped_classes_leave_train_only_and_a_matrix_moves_labels_as_asked():
    ds = _five_classes()
    out = simulate(ds, Recipe(drop_classes=("b", "d")))
    assert _train_counts(out) == [200, 0, 200, 0, 200]
    assert np.bincount(out.labels[out.split == 2], minlength=5).tolist() == [30] * 5  # still in test: unknown there
    m = np.eye(5)
    m[:, 0] = [0.5, 0.5, 0, 0, 0]  # half of class a is called b
    out = simulate(ds, Recipe(noise_kind="matrix", noise_matrix=tuple(map(tuple, m))))
    assert _train_counts(out) == [100, 300, 200, 200, 200]


def test_duplicates_are_exact_copies_in_train():
    ds = _five_classes()
    out = simulate(ds, Recipe(duplicate_share=0.1, seed=4))
    assert len(out) == len(ds) + 100 and sum(_train_counts(out)) == 1100
    dup = out.meta["sim_duplicate_of"].to_numpy()
    copies = np.flatnonzero(dup >= 0)
    assert len(copies) == 100 and (out.split[copies] == 0).all()
    hashes = content_hashes(out)
    assert (hashes[copies] == hashes[dup[copies]]).all() and (out.labels[copies] == out.labels[dup[copies]]).all()


def test_thinning_a_slice_keeps_the_asked_share_of_it():
    ds = _five_classes()
    out = simulate(ds, Recipe(thin_column="domain", thin_value="news", thin_keep=0.2))
    news = (out.meta["domain"] == "news").to_numpy()
    assert int((news & (out.split == 0)).sum()) == 50  # 250 news items in train, a fifth kept
    assert int((~news & (out.split == 0)).sum()) == 750
    assert int((news & (out.split == 2)).sum()) == int(((ds.meta["domain"] == "news").to_numpy() & (ds.split == 2)).sum())


def test_recipes_that_cannot_work_say_what_to_change():
    ds = _five_classes()
    with pytest.raises(DataError, match="leaves no train items of e: lower the imbalance ratio"):
        simulate(ds, Recipe(imbalance="long_tail", ratio=1000))
    with pytest.raises(DataError, match="no class named 'z'"):
        simulate(ds, Recipe(drop_classes=("z",)))
    with pytest.raises(DataError, match="fewer than two"):
        simulate(ds, Recipe(drop_classes=("a", "b", "c", "d")))
    with pytest.raises(DataError, match="must be 5 × 5"):
        simulate(ds, Recipe(noise_kind="matrix", noise_matrix=((1.0, 0.0), (0.0, 1.0))))
    with pytest.raises(DataError, match="No meta column 'topic'"):
        simulate(ds, Recipe(thin_column="topic", thin_value="x", thin_keep=0.5))
    with pytest.raises(DataError, match=r"ratio must be at least 1.*noise rate must be in"):
        Recipe(ratio=0.5, noise_rate=1.5)


def test_a_simulated_version_is_stored_with_its_recipe_and_its_truth_is_no_slice(store):
    parent = store.save_dataset(_five_classes(), source="upload:five")
    recipe = Recipe(imbalance="long_tail", ratio=10, noise_rate=0.2, drop_classes=("c",), duplicate_share=0.05, seed=7)
    vid = save_simulated(store, parent, recipe)
    info = store.version(vid)
    assert info.kind == "simulate" and info.parent_id == parent and info.dataset_id == store.version(parent).dataset_id
    assert recipe_of(store, vid) == recipe and recipe_of(store, parent) is None
    assert "long tail ×10" in info.note and "20% symmetric noise" in info.note and "dropped c" in info.note
    back = store.load_dataset(vid)
    direct = simulate(_five_classes(), recipe)
    assert np.array_equal(back.labels, direct.labels)
    assert back.meta["sim_noisy"].sum() == direct.meta["sim_noisy"].sum() > 0
    assert list(slice_columns(back.meta)) == ["domain"]  # source_item and sim_* are bookkeeping


def test_sweep_recipes_follow_the_knob():
    from core.simulate.sweep import recipe_at

    base = Recipe(noise_rate=0.1, seed=5)
    names = ["a", "b", "c", "d", "e"]
    assert recipe_at(base, "long_tail", 50, names) == Recipe(imbalance="long_tail", ratio=50, noise_rate=0.1, seed=5)
    assert recipe_at(base, "long_tail", 1, names).active == ["10% symmetric noise"]  # severity 1: the base alone
    assert recipe_at(base, "noise", 0.3, names).noise_rate == 0.3
    assert recipe_at(base, "drop", 2, names).drop_classes == ("d", "e")
    assert recipe_at(base, "duplicates", 0.5, names).duplicate_share == 0.5
    with pytest.raises(ValueError, match="unknown sweep knob"):
        recipe_at(base, "colour", 1, names)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_sweep_simulates_each_severity_once_and_runs_baseline_and_mitigated(store):
    import time

    from core.data.demos import load_digits_8x8
    from core.runners.local import LocalRunner
    from core.simulate.sweep import fast_config, start_sweep, sweep_results

    parent = store.save_dataset(load_digits_8x8().dataset, source="demo:digits")
    runner = LocalRunner(store, max_parallel=1)
    try:
        config = dataclasses.replace(fast_config("image", epochs=2), device="cpu")
        seen = []
        sweep_id = start_sweep(
            store,
            runner,
            parent,
            knob="noise",
            severities=[0.0, 0.4],
            base=Recipe(seed=1),
            config=config,
            preset="noisy_labels",
            progress=lambda done, total, text: seen.append((done, total)),
        )
        assert seen == [(1, 2), (2, 2)]
        sweep = store.sweeps()[0]
        assert sweep["id"] == sweep_id and sweep["params"]["knob"] == "noise" and len(sweep["runs"]) == 4
        versions = {r["severity"]: r["version_id"] for r in sweep["runs"]}
        assert store.version(versions[0.4]).kind == "simulate" and "40% symmetric noise" in store.version(versions[0.4]).note
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            runner.tick()
            table = sweep_results(store, sweep)
            if table["ended"].all():
                break
            time.sleep(0.2)
        assert table["status"].tolist() == ["finished"] * 4, table[["status", "message"]]
        assert sorted(table["arm"].unique()) == ["baseline", "mitigated"]
        assert table[["hallucination_rate", "ece", "macro_f1"]].notna().all().all()
        clean, noisy = (table[(table["arm"] == "baseline") & (table["severity"] == s)]["macro_f1"].iloc[0] for s in (0.0, 0.4))
        assert noisy < clean  # 40 % of the train labels wrong costs macro-F1
        mitigated = store.run(int(table[table["arm"] == "mitigated"]["run_id"].iloc[0]))
        assert mitigated.config["mitigations"]["loss"]["label_smoothing"] == 0.3  # the noisy-label preset
        # the same severity again: its version is reused, not simulated twice
        start_sweep(store, runner, parent, knob="noise", severities=[0.4], base=Recipe(seed=1), config=config)
        assert store.sweeps()[0]["runs"][0]["version_id"] == versions[0.4]
        for row in store.runs(status=("queued", "running")):
            runner.stop(row.id)
    finally:
        runner.close()


def test_grading_the_detector_against_the_truth():
    from core.simulate.grade import grade

    flagged = np.array([1, 1, 0, 0, 1, 0], bool)
    truth = np.array([1, 0, 1, 0, 1, 1], bool)
    g = grade(flagged, truth)
    assert (g.corrupted, g.flagged, g.caught) == (4, 3, 2) and g.precision == 2 / 3 and g.recall == 0.5
    assert g.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    only_first = grade(flagged, truth, among=np.array([1, 1, 1, 0, 0, 0], bool))
    assert (only_first.caught, only_first.precision, only_first.recall) == (1, 0.5, 0.5)
    assert np.isnan(grade(np.zeros(3, bool), np.zeros(3, bool)).f1)
