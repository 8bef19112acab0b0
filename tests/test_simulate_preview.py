"""What the Simulate page shows: a recipe's preview figures, the detector's grade, the version recipes
start from, and sweeps (severities, progress, notes, the runs table), each checked exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data import demos
from core.data.dataset import Dataset
from core.simulate import recipe_preview as preview
from core.simulate import sweep
from core.simulate.corrupt import plan_recipe
from core.simulate.grade import Grade, grade_detector, has_noise_truth
from core.simulate.recipe import Recipe
from core.simulate.versions import recipe_source, save_simulated
from core.store import Store
from tests.test_simulate import _five_classes
from tests.test_train_pages import open_page


def _figures(recipe: Recipe) -> list[tuple[str, str, str | None]]:
    ds = _five_classes()  # 200 train items in each of 5 classes
    return [(f.label, f.value, f.delta) for f in preview.plan_figures(ds, plan_recipe(ds, recipe))]


def test_plan_figures_count_train_items_imbalance_wrong_labels_and_copies():
    # long tail ×100 keeps 200, 63, 20, 6, 2 of the 200 train items per class
    assert _figures(Recipe(imbalance="long_tail", ratio=100)) == [
        ("Train items", "291", "-709"),
        ("Imbalance ratio (given labels)", "100.0", None),
        ("Wrong train labels", "0", None),
        ("Duplicated items", "0", None),
    ]
    noisy = dict((label, value) for label, value, _ in _figures(Recipe(noise_rate=0.3)))
    assert noisy["Train items"] == "1,000" and noisy["Wrong train labels"] == "300"  # 30% of 200 in each class
    copies = _figures(Recipe(duplicate_share=0.1))
    assert copies[0] == ("Train items", "1,100", "+100") and copies[3] == ("Duplicated items", "100", None)


def _two_classes() -> Dataset:
    """2 balanced classes: 200 train and 20 test items each."""
    labels, split = np.repeat([0, 1, 0, 1], [200, 200, 20, 20]), np.repeat([0, 2], [400, 40])
    return Dataset("two", "image", np.zeros((440, 2, 2), np.uint8), labels, ["a", "b"], split)


def test_noise_after_a_long_tail_is_said_to_move_the_ratio_with_both_figures():
    ds, recipe = _two_classes(), Recipe(imbalance="long_tail", ratio=10, noise_rate=0.3)
    plan = plan_recipe(ds, recipe)
    steps = preview.ratio_steps(ds, plan)
    # the long tail keeps 200 of a and 20 of b (10.0); 30% noise sends 60 a → b and 6 b → a: 146 and 74
    assert steps.shaped_counts == (200, 20) and steps.noisy_counts == (146, 74) and plan.counts_after.tolist() == [146, 74]
    assert (steps.before, steps.shaped) == (1.0, 10.0) and steps.noisy == steps.after == pytest.approx(146 / 74)
    assert dict((f.label, f.value) for f in preview.plan_figures(ds, plan))["Imbalance ratio (given labels)"] == "2.0"
    assert preview.ratio_words(recipe, steps, ["a", "b"]) == (
        "Imbalance 2.0 after noise (10.0 from the long tail alone): 30% symmetric noise moved labels between the classes: "
        "class a (200 → 146) lost 54 net, class b (20 → 74) gained 54 net."
    )


def test_the_ratio_is_explained_only_when_a_step_after_the_imbalance_moved_it():
    ds = _two_classes()
    alone = Recipe(imbalance="long_tail", ratio=10)
    assert preview.ratio_words(alone, preview.ratio_steps(ds, plan_recipe(ds, alone)), ["a", "b"]) is None
    # symmetric noise on balanced classes moves as many labels each way: the ratio stays 1.0
    balanced = Recipe(noise_rate=0.3)
    assert preview.ratio_words(balanced, preview.ratio_steps(ds, plan_recipe(ds, balanced)), ["a", "b"]) is None
    # a long tail ×4 on three classes keeps 200, 100, 50; a matrix then moves 20% of a's labels to c
    three = Dataset("three", "image", np.zeros((600, 2, 2), np.uint8), np.repeat([0, 1, 2], 200), ["a", "b", "c"], np.zeros(600, int))
    matrix = ((0.8, 0.0, 0.0), (0.0, 1.0, 0.0), (0.2, 0.0, 1.0))
    tail = Recipe(imbalance="long_tail", ratio=4, noise_kind="matrix", noise_matrix=matrix)
    steps = preview.ratio_steps(three, plan_recipe(three, tail))
    assert steps.shaped_counts == (200, 100, 50) and steps.noisy_counts == (160, 100, 90)
    assert preview.ratio_words(tail, steps, ["a", "b", "c"]) == (
        "Imbalance 1.8 after noise (4.0 from the long tail alone): the noise matrix moved labels between the classes: "
        "class a (200 → 160) lost 40 net, class c (50 → 90) gained 40 net."
    )
    # copies: a 2-class version where copying at random tilts the ratio
    copies = Recipe(duplicate_share=0.5, seed=1)
    two = Dataset("two", "image", np.zeros((6, 2, 2), np.uint8), np.array([0, 0, 0, 1, 1, 1]), ["a", "b"], np.array([0, 0, 0, 0, 0, 2]))
    steps = preview.ratio_steps(two, plan_recipe(two, copies))
    words = preview.ratio_words(copies, steps, ["a", "b"])
    assert steps.shaped == steps.noisy == 1.5 and steps.after != 1.5
    assert words is not None and words.startswith(f"Imbalance {steps.after:.1f} after copies (1.5 from the train split as it is alone): ")
    assert words.endswith("copying 50% of the train items at random added more to some classes than to others.")


def test_per_class_counts_slices_and_the_neutral_matrix():
    names = ["a", "b", "c"]
    assert preview.per_class(names, np.array([5, 0, 2])) == {"a": 5.0, "b": 0.0, "c": 2.0}
    assert preview.slice_values(_five_classes().meta) == {"domain": ["news", "web"]}
    eye = preview.identity_matrix(names)
    assert list(eye.index) == list(eye.columns) == names and eye.to_numpy().tolist() == np.eye(3).tolist()
    edited = eye.copy()
    edited.loc["a", "b"], edited.loc["b", "b"] = 0.25, 0.75
    assert preview.matrix_rows(edited) == ((1.0, 0.25, 0.0), (0.0, 0.75, 0.0), (0.0, 0.0, 1.0))
    assert preview.source_line("Digits · v1", _five_classes()) == "**From:** Digits · v1 — 1,250 items, 5 classes"


def _graded() -> Dataset:
    meta = pd.DataFrame({"sim_noisy": [True, False, True, False, True, False]})
    return Dataset(
        "g", "text", np.array(list("abcdef"), dtype=object), np.array([0, 1, 0, -1, 1, 0]), ["x", "y"], np.array([0, 0, 0, 0, 1, 2]), meta
    )


def test_the_detector_is_graded_on_labelled_train_items_only():
    ds = _graded()
    assert has_noise_truth(ds) and not has_noise_truth(_five_classes())
    # among items 0, 1, 2 (3 is unlabelled; 4, 5 are not train): flagged 0, 1; wrong 0, 2
    g = grade_detector(ds, np.array([True, True, False, False, True, True]))
    assert g == Grade(corrupted=2, flagged=2, caught=1, precision=0.5, recall=0.5)
    assert [f[:3] for f in preview.grade_figures(g)] == [
        ("Wrong labels (truth)", "2", ""),
        ("Flagged by the detector", "2", ""),
        ("Precision", "50.0%", "Share of the flagged items that are really wrong."),
        ("Recall", "50.0%", "Share of the wrong labels the detector found."),
    ]
    nothing = grade_detector(ds, np.zeros(6, bool))
    assert [f.value for f in preview.grade_figures(nothing)] == ["2", "0", "—", "0.0%"]


def test_recipes_start_from_a_simulated_versions_clean_parent(store):
    parent = store.save_dataset(_five_classes(), source="upload:five")
    recipe = Recipe(noise_rate=0.2, seed=4)
    child = save_simulated(store, parent, recipe)
    assert recipe_source(store, child) == (parent, recipe)
    assert recipe_source(store, parent) == (parent, None)


def test_sweeps_of_a_dataset_include_its_archived_versions(store):
    parent = store.save_dataset(_five_classes(), source="upload:five")
    child = save_simulated(store, parent, Recipe(noise_rate=0.2))
    other = store.save_dataset(_five_classes(), source="upload:other")
    first = store.create_sweep(parent, {"knob": "noise"}, name="first")
    store.create_sweep(other, {"knob": "noise"}, name="elsewhere")
    second = store.create_sweep(child, {"knob": "drop"}, name="second")
    store.set_archived(child)
    dataset_id = store.version(parent).dataset_id
    assert [sw["id"] for sw in sweep.sweeps_of(store, dataset_id)] == [second, first]  # newest first


@pytest.mark.parametrize(
    "raw, severities, problem",
    [
        ("0, 0.1, 0.2", [0.0, 0.1, 0.2], None),
        ("1; 10 ;100", [1.0, 10.0, 100.0], None),
        ("5", [5.0], "Give 2 to 6 severities."),
        ("1,2,3,4,5,6,7", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], "Give 2 to 6 severities."),
        ("0, a lot", [], "Severities are numbers separated by commas, e.g. 0, 0.1, 0.2, 0.3."),
        ("", [], "Give 2 to 6 severities."),
    ],
)
def test_severities_are_parsed_or_refused_with_the_reason(raw, severities, problem):
    assert sweep.parse_severities(raw) == (severities, problem)


def test_default_severities_and_runs_needed():
    assert sweep.default_severities("long_tail") == "1, 10, 30, 100"
    assert sweep.default_severities("noise") == "0, 0.1, 0.2, 0.3, 0.4"
    assert sweep.n_runs([0.0, 0.1, 0.2], mitigated=False) == 3 and sweep.n_runs([0.0, 0.1, 0.2], mitigated=True) == 6


def _table() -> pd.DataFrame:
    nan = float("nan")
    rows = [
        (0.0, "baseline", 11, 3, "finished", True, False, "", 0.10, nan, 0.05, 0.9),
        (0.4, "baseline", 12, 4, "failed", True, True, "x" * 450 + " disk full", nan, nan, nan, nan),
        (0.4, "mitigated", 13, 4, "running", False, False, "", nan, nan, nan, nan),
    ]
    return pd.DataFrame(rows, columns=["severity", "arm", "run_id", "version_id", "status", "ended", "failed", "message", *sweep.METRICS])


def test_sweep_progress_notes_and_failures():
    table = _table()
    assert sweep.progress(table) == (1, 1 / 3, "1 of 3 runs finished, 1 failed")
    assert sweep.progress(table.iloc[[0]]) == (1, 1.0, "1 of 1 runs finished")
    assert sweep.metric_note(table, "hallucination_rate", 1) is None  # a value to draw
    assert sweep.metric_note(table, "forced_known_rate", 1) == "**Forced-known rate @τ** appears as the runs are evaluated."
    assert sweep.metric_note(table, "forced_known_rate", 3) == (
        "**Forced-known rate @τ**: no run has a value. It applies only where the test split has classes missing from train "
        "(dropped classes)."
    )
    assert sweep.metric_note(table.iloc[[1]], "ece", 1) == "**ECE**: no run has a value. "
    [line] = sweep.failures(table)
    assert line == "Run #12 (baseline, severity 0.4) failed: " + "x" * 390 + " disk full"  # the last 400 characters


def test_the_runs_table_reads_dashes_and_plain_names():
    titles = {
        "hallucination_rate": "hallucination rate @τ",
        "forced_known_rate": "forced-known rate @τ",
        "ece": "ECE",
        "macro_f1": "macro-F1",
    }
    shown = sweep.runs_table(_table(), titles)
    assert list(shown.columns) == ["severity", "arm", "run", "version", "status", "message", *titles.values()]
    assert shown.iloc[0][list(titles.values())].tolist() == ["0.1000", "—", "0.0500", "0.9000"]
    assert shown["run"].tolist() == [11, 12, 13]


def test_the_simulate_page_explains_a_ratio_noise_moved(home):
    store = Store(home)
    demos.import_demo(store, "digits")
    at = open_page("app_pages/simulate.py")
    at.radio(key="sm_imbalance").set_value("long_tail")
    at.select_slider(key="sm_ratio").set_value(10)
    at.run()
    assert not [i.value for i in at.info if "after noise" in i.value]  # the long tail alone: nothing to explain
    at.slider(key="sm_noise").set_value(0.3)
    at.run()
    assert not at.exception, at.exception
    ds, recipe = store.load_dataset(store.versions()[0].id), Recipe(imbalance="long_tail", ratio=10, noise_rate=0.3)
    want = preview.ratio_words(recipe, preview.ratio_steps(ds, plan_recipe(ds, recipe)), list(map(str, ds.class_names)))
    # digits' train split is not quite balanced (147 ÷ 140): the long tail alone makes 10.3
    assert want is not None and want.startswith("Imbalance 4.9 after noise (10.3 from the long tail alone): 30% symmetric noise")
    assert [i.value for i in at.info if "after noise" in i.value] == [want]
