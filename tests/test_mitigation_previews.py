"""Numbers the Train page shows under the mitigation knobs: the train split's classes by name, the
items an augmentation preview draws, how many train items in-run cleaning by plan changes, and the
per-class numbers the loss will use (the criterion's own)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data import demos
from core.data.dataset import Dataset
from core.data.profile import profile
from core.mitigate.criterion import ClassAwareLoss
from core.mitigate.in_run_cleaning import train_changes
from core.mitigate.preview import loss_counts_note, loss_preview, preview_items, train_classes
from core.mitigate.settings import Cleaning, LossSettings, Mitigations, Resampling, SemiSupervision
from core.store import Store
from tests.test_train_pages import open_page


def _ds() -> Dataset:
    # class a: 300 train items, b: 4 (the tail), c: none in train (2 in test)
    labels = np.array([0] * 304 + [1] * 6 + [2] * 2)
    split = np.array([0] * 300 + [2] * 4 + [0] * 4 + [1] * 2 + [2] * 2)
    items = np.arange(len(labels) * 4, dtype=np.uint8).reshape(-1, 2, 2)
    return Dataset("toy", "image", items, labels, ["a", "b", "c"], split)


def test_train_classes_name_the_counts_the_tail_and_the_absent():
    ds = _ds()
    classes = train_classes(profile(ds).train, ds.class_names)
    assert classes.counts == {"a": 300, "b": 4} and classes.tail == ["b"] and classes.absent == ["c"]


def test_preview_items_come_from_train_and_the_chosen_classes():
    ds = _ds()
    picked = preview_items(ds, ["b"], seed=0, n=8)
    assert picked.tolist() == [304, 305, 306, 307]  # b's four train items: fewer than asked
    some = preview_items(ds, [], seed=3, n=5)
    assert len(some) == 5 and (np.diff(some) > 0).all() and (ds.split[some] == 0).all()
    assert preview_items(ds, [], seed=3, n=5).tolist() == some.tolist()  # the seed decides
    assert preview_items(ds, ["unknown"], seed=3, n=5).tolist() == some.tolist()  # no class of this dataset: all


def test_train_changes_by_plan_count_train_items_only():
    ds = _ds()
    plan = Cleaning(action="drop", source="plan", plan_drop=[0, 1, 300, 301], plan_relabel={"2": 1, "308": 0, "309": 1})
    assert train_changes(plan, ds) == (2, 1)  # 300 and 301 are test items; 308 and 309 val
    assert train_changes(Cleaning(), ds) == (0, 0)


COUNTS = {"a": 300, "b": 40, "c": 4}  # the model's classes in order, as the Train page names them


def _criterion(loss: LossSettings) -> ClassAwareLoss:
    return ClassAwareLoss(loss, np.array(list(COUNTS.values())))


@pytest.mark.parametrize(
    "loss",
    [
        LossSettings(class_weights="inverse"),
        LossSettings(class_weights="effective_number", beta=0.99),
        LossSettings(name="logit_adjusted", tau=1.5),
        LossSettings(name="balanced_softmax", class_weights="inverse"),
        LossSettings(name="ldam", max_margin=0.4),
        LossSettings(name="focal", gamma=2.0, class_weights="effective_number"),
    ],
)
def test_the_loss_preview_shows_the_numbers_the_criterion_uses(loss):
    p, crit = loss_preview(loss, COUNTS), _criterion(loss)
    for shown, used in ((p.weights, crit._weights), (p.offsets, crit.shift), (p.margins, crit.margins)):
        assert (shown is None) == (used is None)
        if shown is not None and used is not None:
            assert list(shown) == list(COUNTS)
            np.testing.assert_allclose(list(shown.values()), used.numpy(), rtol=1e-6)


def test_loss_preview_figures_by_hand():
    inverse = loss_preview(LossSettings(class_weights="inverse"), COUNTS)
    raw = np.array([1 / 300, 1 / 40, 1 / 4])
    assert inverse.weights == pytest.approx(dict(zip(COUNTS, raw / raw.sum() * 3)))  # c: 2.69, a: 0.0359
    assert inverse.words == [
        "Class weights ∝ 1 / train items, summing to 3: c (4 items) weighs 2.69, a (300) 0.0359 — an item of c counts 75.0× one of a."
    ]
    adjusted = loss_preview(LossSettings(name="logit_adjusted", tau=1.0), COUNTS)
    assert adjusted.offsets == pytest.approx({"a": np.log(300 / 344), "b": np.log(40 / 344), "c": np.log(4 / 344)})
    assert adjusted.words[0].startswith(
        "While training, each class's logit gets τ·log(its share of train), τ = 1: from -0.14 (a) to -4.45 (c). c must win by 4.32 more"
    )
    balanced = loss_preview(LossSettings(name="balanced_softmax"), COUNTS)
    assert balanced.offsets == pytest.approx({"a": np.log(300), "b": np.log(40), "c": np.log(4)})
    # the same differences as logit adjustment with τ = 1: softmax ignores the shared shift log 344
    assert balanced.offsets is not None and adjusted.offsets is not None
    assert balanced.offsets["a"] - balanced.offsets["c"] == pytest.approx(adjusted.offsets["a"] - adjusted.offsets["c"])
    plain = loss_preview(LossSettings(), COUNTS)
    assert plain.weights is None and plain.offsets is None and plain.margins is None and plain.focal is None
    assert plain.words == [
        "No class weights: every item counts the same, so each class weighs in the loss as its share of train — "
        "a 87.2% (300 items), c 1.2% (4)."
    ]
    deferred = loss_preview(LossSettings(class_weights="inverse", reweight_from=0.75), COUNTS, epochs=8)
    assert deferred.words[0].endswith("They apply from epoch 7 of 8 on (deferred); before that every item counts the same.")
    smooth = loss_preview(LossSettings(label_smoothing=0.3), COUNTS)
    assert smooth.words[-1] == "Label smoothing: each target keeps 0.800 on its label and gives 0.100 to every other class."


def test_the_focal_preview_is_the_share_of_cross_entropy_the_criterion_keeps():
    loss = LossSettings(name="focal", gamma=2.0)
    p = loss_preview(loss, COUNTS)
    assert p.focal is not None and p.focal == pytest.approx({0.1: 0.81, 0.5: 0.25, 0.9: 0.01})
    crit = _criterion(loss)
    for prob, factor in p.focal.items():
        # logits that give the label (class 0) probability prob, the rest shared evenly by two classes
        logits = torch.tensor([[np.log(prob), np.log((1 - prob) / 2), np.log((1 - prob) / 2)]], dtype=torch.float32)
        assert float(crit(logits, torch.tensor([0]))) == pytest.approx(factor * -np.log(prob), rel=1e-5)
    assert "0.81 at p = 0.1, 0.25 at p = 0.5, 0.01 at p = 0.9" in p.words[-1]


def test_the_preview_says_when_the_run_counts_again():
    assert loss_counts_note(Mitigations()) is None
    m = Mitigations(clean=Cleaning(action="drop"), semi=SemiSupervision(method="label_spreading"))
    assert loss_counts_note(m) == (
        "Figures from the train split's counts; the run computes them again after in-run cleaning drops or relabels train "
        "items and label spreading adds pool items."
    )
    drawn = Mitigations(loss=LossSettings(name="balanced_softmax"), resample=Resampling("class_balanced", resample_from=0.5))
    assert loss_counts_note(drawn) == (
        "Figures from the train split's counts; the offsets follow the classes class-balanced sampling draws from 50% of the "
        "epochs on, each epoch (under class-balanced draws they are equal, and the loss is plain cross-entropy)."
    )
    assert loss_counts_note(Mitigations(resample=Resampling("sqrt"))) is None  # cross-entropy has no offsets to move
    assert "the classes square-root sampling draws, each epoch" in loss_counts_note(
        Mitigations(loss=LossSettings(name="balanced_softmax"), resample=Resampling("sqrt"))
    )


def test_the_train_pages_loss_tab_previews_the_offsets(home):
    store = Store(home)
    ds = store.load_dataset(demos.import_demo(store, "digits"))
    at = open_page("app_pages/train.py")
    assert not any(m.value.startswith("While training") for m in at.markdown)
    assert any(m.value.startswith("No class weights: every item counts the same") for m in at.markdown)
    at.selectbox(key="tr_loss_name").set_value("balanced_softmax")
    at.run()
    assert not at.exception, at.exception
    counts = train_classes(profile(ds).train, ds.class_names).counts
    want = loss_preview(LossSettings(name="balanced_softmax"), counts).words[0]
    assert any(m.value == want for m in at.markdown) and want.startswith("While training, each class's logit gets log(its train items)")
    assert any(c.proto.spec and "Logit offset while training per class" in c.proto.spec for c in at.get("plotly_chart"))
