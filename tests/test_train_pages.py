"""AppTest of the Train and Runs pages with real background runs (digits, small CNN)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.data import demos
from core.store import Store
from tests.conftest import APP, needs_asset
from ui.widgets import lr_step

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def wait_for(predicate, timeout=120.0, poll=0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return False


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def test_train_page_starts_a_run_and_runs_page_shows_it(home):
    store = Store(home)
    vid = demos.import_demo(store, "digits")
    at = open_page("app_pages/train.py")
    text = " ".join(m.value for m in at.markdown)
    assert "small CNN (random init)" in text and "1,445 training items" in text and "69 steps" in text
    assert any("Estimated time" in m.value for m in at.markdown)
    at.button(key="start_run").click()
    at.run()
    assert not at.exception, at.exception
    runs = store.runs()
    assert len(runs) == 1 and runs[0].version_id == vid and runs[0].config["model"] == "small_cnn"
    assert runs[0].config["selection_window"] == 2  # 180 val items: the best is judged over two evaluations
    assert any(f"Run #{runs[0].id}" in s.value for s in at.success)
    # the app's runner pumps the queue in the background: the run finishes with no further input
    assert wait_for(lambda: store.run(runs[0].id).status == "finished"), store.run(runs[0].id)
    at.switch_page("app_pages/runs.py")
    at.run()
    assert not at.exception, at.exception
    kpis = {m.label: m.value for m in at.metric}
    assert float(kpis["Accuracy"]) > 0.8 and kpis["Forced-known rate @τ"] == "—"
    # one evaluation, named, everywhere: the cards, their deltas and the gallery read the best step
    from core.metrics.results import RunResults

    res = RunResults(store, runs[0].id)
    step = res.result_step
    assert any(f"Test scores at step {step}, the best val macro-F1 over 2 evaluations" in m.value for m in at.markdown)
    for label, name in (("Accuracy", "accuracy"), ("Macro-F1", "macro_f1"), ("ECE", "ece")):
        assert kpis[label] == f"{res.at(name, step):.3f}"
    ece_delta = next(m for m in at.metric if m.label == "ECE").delta
    change = res.at("ece", step, "test_ts") - res.at("ece", step)
    assert ece_delta == ("unchanged after TS" if round(change, 3) == 0 else f"{change:+.3f} after TS")
    assert any(c.value.startswith(f"At step {step}") for c in at.caption)
    assert len(at.get("plotly_chart")) == 8  # loss, accuracy, hallucination, recall, reliability, confusion; the explained item twice
    assert "Answered" not in kpis  # the run neither abstains nor moves thresholds: no decisions panel
    assert any("wrong of 176" in c.value for c in at.caption)  # the hallucination gallery
    assert any("Temperature scaling" in m.value for m in at.markdown)
    # a single run's report and exports
    at.button(key=f"export_run_{runs[0].id}_prepare").click()
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == 4


def test_runs_page_updates_while_a_run_goes_and_stops_it(home):
    store = Store(home)
    demos.import_demo(store, "digits")
    at = open_page("app_pages/train.py")
    at.number_input(key="tr_epochs").set_value(200)
    at.number_input(key="tr_eval").set_value(5)
    at.run()
    at.button(key="start_run").click()
    at.run()
    run_id = store.runs()[0].id
    assert wait_for(lambda: len(store.metrics(run_id)) > 0)
    at.switch_page("app_pages/runs.py")
    at.run()
    first = len(store.metrics(run_id))
    assert wait_for(lambda: len(store.metrics(run_id)) > first + 20)
    at.run()  # a tick of run_every
    assert not at.exception, at.exception
    assert any("running" in s.value for s in at.subheader)
    at.button(key=f"stop_{run_id}").click()
    at.run()
    assert wait_for(lambda: store.run(run_id).status == "stopped", timeout=60), store.run(run_id)
    rows = len(store.metrics(run_id))
    assert rows > first  # nothing written before the stop is lost
    at.run()
    assert any("stopped" in s.value for s in at.subheader)


def test_train_page_rejects_a_bad_model_path(home):
    demos.import_demo(Store(home), "digits")
    at = open_page("app_pages/train.py")
    at.text_input(key="tr_path").set_value("/nowhere/model.pth")
    at.run()
    assert any("neither a built-in" in e.value and "existing path" in e.value for e in at.error)
    assert at.button(key="start_run").disabled


def _stop_all(store: Store) -> None:
    for row in store.runs():
        store.request_stop(row.id)


def test_every_group_of_mitigation_knobs_lands_in_the_stored_config(home):
    store = Store(home)
    demos.import_demo(store, "digits")
    at = open_page("app_pages/train.py")
    assert at.radio(key="tr_preset").value == "baseline" and at.selectbox(key="tr_loss_name").value == "cross_entropy"
    at.radio(key="tr_preset").set_value("long_tail")
    at.run()
    assert at.selectbox(key="tr_loss_name").value == "balanced_softmax"
    assert at.selectbox(key="tr_rs_method").value == "sqrt" and at.slider(key="tr_loss_wd").value == 3.0  # a CNN trained whole
    assert at.multiselect(key="tr_aug_image").value == []  # no preset augments (see core.mitigate.presets)
    # now every group by hand: the preset becomes "custom"
    at.selectbox(key="tr_rs_method").set_value("class_balanced")
    at.run()
    assert at.radio(key="tr_preset").value == "custom"
    assert any("Hallucination trade-off" in w.value and "Class-balanced sampling" in w.value for w in at.warning)
    at.selectbox(key="tr_loss_name").set_value("focal")
    at.selectbox(key="tr_loss_weights").set_value("effective_number")
    at.run()
    at.slider(key="tr_loss_gamma").set_value(1.5)
    at.slider(key="tr_loss_smoothing").set_value(0.05)
    at.slider(key="tr_loss_drw").set_value(0.5)
    at.number_input(key="tr_loss_beta").set_value(0.99)
    at.slider(key="tr_loss_wd").set_value(0.5)
    at.slider(key="tr_rs_from").set_value(0.6)
    at.toggle(key="tr_rs_crt").set_value(True)
    at.multiselect(key="tr_aug_image").set_value(["rotate", "noise"])
    at.slider(key="tr_aug_strength").set_value(0.3)
    at.multiselect(key="tr_aug_classes").set_value(["9"])
    at.number_input(key="tr_aug_multiplier").set_value(2)
    at.toggle(key="tr_dec_tm").set_value(True)
    at.slider(key="tr_dec_abstain").set_value(0.75)
    at.selectbox(key="tr_adv_method").set_value("pgd")
    at.run()
    at.slider(key="tr_adv_eps").set_value(0.05)
    at.number_input(key="tr_adv_steps").set_value(2)
    at.slider(key="tr_adv_share").set_value(0.5)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(
        "Class-balanced sampling (resampling, from 60% of the epochs), classifier re-trained alone in the second stage (cRT), Focal loss, "
        "Weight ∝ 1 / effective number, label smoothing 0.05, weight decay 0.5 (weight balancing), augmentation: rotate, noise, "
        "threshold moving, abstain below confidence 0.75, adversarial training: PGD-2 at ε = 0.05, 50% of each batch" in m.value
        for m in at.markdown
    )
    at.button(key="start_run").click()
    at.run()
    stored = store.runs()[0].config["mitigations"]
    _stop_all(store)
    assert stored == {
        "resample": {"method": "class_balanced", "k_neighbors": 5, "targets": {}, "resample_from": 0.6, "retrain_head": True},
        "loss": {
            "name": "focal",
            "class_weights": "effective_number",
            "beta": 0.99,
            "gamma": 1.5,
            "label_smoothing": 0.05,
            "tau": 1.0,
            "max_margin": 0.5,
            "scale": 1.0,
            "reweight_from": 0.5,
            "weight_decay": 0.5,
        },
        "augment": {"image": ["rotate", "noise"], "text": [], "strength": 0.3, "classes": ["9"], "multiplier": 2},
        "token_augment": {"mention": 0.0, "lwtr": 0.0, "synonym": 0.0, "shuffle": 0.0, "copies": 1, "types": []},  # image data: off
        "clean": {"action": "none", "source": "detector", "threshold": 0.2, "plan_drop": [], "plan_relabel": {}},
        "semi": {"method": "none", "threshold": 0.9, "rounds": 1, "k_neighbors": 7},
        "decision": {"threshold_moving": True, "abstain_below": 0.75, "o_offset": False, "logit_adjustment": False},
        "adversarial": {"method": "pgd", "eps": 0.05, "steps": 2, "share": 0.5},
    }


def test_settings_survive_leaving_the_page_and_the_learning_rate_follows_the_mode(home):
    demos.import_demo(Store(home), "digits")
    at = open_page("app_pages/train.py")
    at.selectbox(key="tr_model").set_value("mobilenet_v2")
    at.run()
    assert at.number_input(key="tr_lr").value == pytest.approx(1e-3)
    at.selectbox(key="tr_mode").set_value("linear_probe")
    at.run()
    assert at.number_input(key="tr_lr").value == pytest.approx(1e-2)  # followed the mode
    at.number_input(key="tr_lr").set_value(5e-4)
    at.number_input(key="tr_epochs").set_value(7)
    at.selectbox(key="tr_loss_name").set_value("logit_adjusted")
    at.run()
    at.selectbox(key="tr_mode").set_value("full")
    at.run()
    assert at.number_input(key="tr_lr").value == pytest.approx(5e-4)  # the user's own value stays
    at.switch_page("app_pages/data.py")
    at.run()
    at.switch_page("app_pages/train.py")
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="tr_model").value == "mobilenet_v2" and at.selectbox(key="tr_mode").value == "full"
    assert at.number_input(key="tr_epochs").value == 7 and at.number_input(key="tr_lr").value == pytest.approx(5e-4)
    assert at.selectbox(key="tr_loss_name").value == "logit_adjusted" and at.radio(key="tr_preset").value == "custom"


@needs_asset("vader")
def test_the_batch_follows_the_dataset_until_changed_and_the_lr_steps_by_its_leading_digit(home):
    store = Store(home)
    digits, vader = demos.import_demo(store, "digits"), demos.import_demo(store, "vader")
    at = open_page("app_pages/train.py")
    at.session_state["current_version"] = digits
    at.run()
    assert at.number_input(key="tr_batch").value == 64  # images on a CPU
    at.session_state["current_version"] = vader
    at.run()
    assert not at.exception, at.exception
    assert at.number_input(key="tr_batch").value == 32  # texts: followed the dataset
    at.number_input(key="tr_batch").set_value(48)
    at.session_state["current_version"] = digits
    at.run()
    assert at.number_input(key="tr_batch").value == 48  # the user's own value stays
    # − and + move the learning rate by one unit of its leading digit, not by a fixed 0.01
    lr = at.number_input(key="tr_lr")
    start = lr.value
    lr.increment().run()
    up = at.number_input(key="tr_lr").value
    assert up == pytest.approx(start + lr_step(start)) and up < 2 * start
    at.number_input(key="tr_lr").set_value(1e-2).run()
    at.number_input(key="tr_lr").decrement().run()
    assert at.number_input(key="tr_lr").value == pytest.approx(9e-3)


def test_a_version_without_test_items_cannot_start_a_run(home):
    # 3 classes × 6 images, split by Gapscope: a class of fewer than 10 items stays wholly in train
    from core.data import Dataset
    from core.data.splits import stratified_split

    labels = np.repeat(np.arange(3), 6)
    images = np.random.default_rng(0).integers(0, 255, (18, 8, 8), dtype=np.uint8)
    ds = Dataset("tiny", "image", images, labels, ["a", "b", "c"], stratified_split(labels))
    assert not (ds.split == 2).any()
    store = Store(home)
    store.save_dataset(ds, source="upload:tiny.zip")
    at = open_page("app_pages/train.py")
    assert any("no test items" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="start_run").disabled


def test_lr_step_is_one_unit_of_the_leading_digit():
    assert [lr_step(v) for v in (3e-3, 1e-2, 5e-5, 2e-2, 0.9, 1e-6)] == pytest.approx([1e-3, 1e-3, 1e-5, 1e-2, 0.1, 1e-6])
    assert lr_step(0.0) == 1e-6


def test_settings_that_cannot_work_are_refused_before_the_run(home):
    store = Store(home)
    demos.import_demo(store, "digits")
    at = open_page("app_pages/train.py")
    at.selectbox(key="tr_rs_method").set_value("random_over")
    at.run()
    at.session_state["tr_rs_targets"] = {"3": 5}  # fewer than class 3's train items: an over-sampler cannot do that
    at.run()
    assert any("random_over can only add items: class 3 has" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="start_run").disabled and at.button(key="start_pair").disabled
    at.session_state["tr_rs_targets"] = {"3": 400}
    at.run()
    assert not at.error and not at.button(key="start_run").disabled
    # the side-by-side pair: same seed, one without mitigations
    at.button(key="start_pair").click()
    at.run()
    runs = sorted(store.runs(), key=lambda r: r.id)
    _stop_all(store)
    assert len(runs) == 2 and runs[0].name.endswith("· baseline")
    assert runs[0].config["seed"] == runs[1].config["seed"] == 0
    assert runs[0].config["mitigations"]["resample"]["method"] == "none"
    assert runs[1].config["mitigations"]["resample"] == {
        "method": "random_over",
        "k_neighbors": 5,
        "targets": {"3": 400},
        "resample_from": 0.0,
        "retrain_head": False,
    }


def test_previews_show_what_resampling_and_augmentation_do(home):
    store = Store(home)
    demos.import_demo(store, "digits")
    at = open_page("app_pages/train.py")
    # weighted sampler: the expected per-epoch counts beside the train split's
    at.selectbox(key="tr_rs_method").set_value("class_balanced")
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1  # per-class counts: train split → one epoch
    # augmentation: originals and augmented copies, re-drawn by the button
    at.multiselect(key="tr_aug_image").set_value(["rotate", "erasing"])
    at.run()
    assert not at.exception, at.exception
    first = [img.proto.imgs[0].url for img in at.image]
    assert len(first) == 2 and first[0] != first[1]  # the originals' strip and the augmented strip
    at.button(key="aug_reroll").click()
    at.run()
    assert [img.proto.imgs[0].url for img in at.image] != first
    # SMOTE on a linear probe: run on the train embeddings, drawn on a map with the new points
    at.selectbox(key="tr_model").set_value("mobilenet_v2")
    at.run()
    at.selectbox(key="tr_mode").set_value("linear_probe")
    at.run()
    at.selectbox(key="tr_rs_method").set_value("smote")
    at.session_state["tr_rs_targets"] = {"0": 300}
    at.run()
    at.button(key="rs_preview").click()
    at.run()
    assert not at.exception, at.exception
    caption = next(c.value for c in at.caption if c.value.startswith("SMOTE on "))
    assert "SMOTE on 1,445 train embeddings → 1,601 items" in caption, caption  # class 0: 144 → 300


def test_in_run_cleaning_takes_the_diagnose_pages_plan(home):
    from core.diagnose.cleaning import CleaningPlan

    store = Store(home)
    vid = demos.import_demo(store, "digits")
    at = open_page("app_pages/train.py")
    at.selectbox(key="tr_clean_action").set_value("drop")
    at.run()
    at.selectbox(key="tr_clean_source").set_value("plan")
    at.run()
    assert any("in-run cleaning by plan, but the Diagnose page has no plan" in e.value for e in at.error)
    plan = CleaningPlan()
    ds = store.load_dataset(vid)
    train = np.flatnonzero(ds.split == 0)
    for i in train[:3]:
        plan.decide(int(i), "drop")
    plan.decide(int(train[3]), "relabel", 5)
    at.session_state[f"plan_{vid}"] = plan
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert any("The plan leaves out **3** train items and relabels **1**" in m.value for m in at.markdown)
    at.button(key="start_run").click()
    at.run()
    clean = store.runs()[0].config["mitigations"]["clean"]
    _stop_all(store)
    assert clean == {
        "action": "drop",
        "source": "plan",
        "threshold": 0.2,
        "plan_drop": sorted(int(i) for i in train[:3]),
        "plan_relabel": {str(int(train[3])): 5},
    }


def test_the_unlabelled_pool_tab_counts_the_pool_and_stores_the_method(home):
    from tests.test_mitigations import _digits_with_pool

    store = Store(home)
    ds, hidden, _ = _digits_with_pool()
    store.save_dataset(ds, source="upload:digits-pool")
    at = open_page("app_pages/train.py")
    assert any(f"This dataset has **{len(hidden):,}** unlabelled items" in c.value for c in at.caption)
    at.selectbox(key="tr_semi_method").set_value("pseudo_label")
    at.run()
    at.number_input(key="tr_semi_rounds").set_value(2)
    at.slider(key="tr_semi_threshold").set_value(0.95)
    at.run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="start_run").click()
    at.run()
    semi = store.runs()[0].config["mitigations"]["semi"]
    _stop_all(store)
    assert semi == {"method": "pseudo_label", "threshold": 0.95, "rounds": 2, "k_neighbors": 7}
