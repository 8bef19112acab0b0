"""Mitigations: losses against hand-computed values, samplers' per-class counts, feature-space
resampling, augmentations (shapes, dtypes, labels, seeds), data-aware checks, and the effect of
balanced softmax on a long-tailed run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.mitigate.augment import ImageAugmenter, TextOps, make_augmenters
from core.mitigate.checks import check
from core.mitigate.criterion import class_weights, ldam_margins, make_criterion
from core.mitigate.resample import resample_features
from core.mitigate.sampler import Imblearn, Multiply, Shuffle, Weighted, make_sampler
from core.mitigate.settings import IMAGE_AUGMENTATIONS, TEXT_AUGMENTATIONS, Augmentation, LossSettings, Mitigations, Resampling
from tests.conftest import needs_asset

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("one_torch_thread")]

# two items, three classes with 10, 5 and 1 train items
Z = np.array([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
Y = np.array([0, 2])
COUNTS = np.array([10.0, 5.0, 1.0])


def _nll(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """−log softmax(z)[y] per row, written out."""
    return np.array([math.log(sum(math.exp(v) for v in row)) - row[t] for row, t in zip(z, y)])


def _loss(**kw) -> float:
    crit = make_criterion(LossSettings(**kw), COUNTS)
    crit.begin_epoch(0, 1)
    return float(crit(torch.tensor(Z, dtype=torch.float32), torch.tensor(Y)))


def test_cross_entropy_and_class_weights():
    assert _loss() == pytest.approx(_nll(Z, Y).mean(), rel=1e-6)
    inv = np.array([1 / 10, 1 / 5, 1.0]) / 1.3 * 3  # ∝ 1/n, summing to K = 3
    np.testing.assert_allclose(class_weights(COUNTS, "inverse"), inv)
    want = (inv[0] * _nll(Z, Y)[0] + inv[2] * _nll(Z, Y)[1]) / (inv[0] + inv[2])  # weighted mean
    assert _loss(class_weights="inverse") == pytest.approx(want, rel=1e-6)
    effective = (1 - 0.9**COUNTS) / (1 - 0.9)  # 6.513, 4.095, 1
    raw = 1 / effective
    np.testing.assert_allclose(class_weights(COUNTS, "effective_number", beta=0.9), raw / raw.sum() * 3)
    assert class_weights(np.array([4.0, 0.0]), "inverse").tolist() == [2.0, 0.0]  # an empty class weighs nothing


def test_focal_label_smoothing_and_the_logit_shifts():
    p = np.exp(-_nll(Z, Y))  # p of the true class
    assert _loss(name="focal", gamma=2.0) == pytest.approx(np.mean(-((1 - p) ** 2) * np.log(p)), rel=1e-6)
    assert _loss(name="focal", gamma=0.0) == pytest.approx(_loss(), rel=1e-6)  # γ = 0 is cross-entropy
    logp = Z - np.log(np.exp(Z).sum(1, keepdims=True))
    q = np.eye(3)[Y] * 0.9 + 0.1 / 3
    assert _loss(label_smoothing=0.1) == pytest.approx(np.mean(-(q * logp).sum(1)), rel=1e-6)
    prior = COUNTS / COUNTS.sum()
    assert _loss(name="logit_adjusted", tau=0.5) == pytest.approx(_nll(Z + 0.5 * np.log(prior), Y).mean(), rel=1e-6)
    assert _loss(name="balanced_softmax") == pytest.approx(_nll(Z + np.log(COUNTS), Y).mean(), rel=1e-6)


def test_ldam_margins_and_deferred_reweighting():
    m = ldam_margins(COUNTS, 0.5)
    np.testing.assert_allclose(m, 0.5 * COUNTS**-0.25)  # the smallest class (n = 1) gets the largest margin
    shifted = Z - np.eye(3)[Y] * m  # the true logit lowered by its class's margin
    assert _loss(name="ldam", max_margin=0.5) == pytest.approx(_nll(shifted, Y).mean(), rel=1e-6)
    assert _loss(name="ldam", max_margin=0.5, scale=2.0) == pytest.approx(_nll(2 * shifted, Y).mean(), rel=1e-6)
    crit = make_criterion(LossSettings(class_weights="inverse", reweight_from=0.5), COUNTS)
    z, y = torch.tensor(Z, dtype=torch.float32), torch.tensor(Y)
    seen = []
    for epoch in range(4):
        crit.begin_epoch(epoch, 4)
        seen.append(float(crit(z, y)))
    assert seen[0] == seen[1] == pytest.approx(_loss()) and seen[2] == seen[3] == pytest.approx(_loss(class_weights="inverse"))


def test_soft_targets_from_mixup_are_accepted():
    soft = torch.tensor([[0.7, 0.0, 0.3], [0.0, 0.4, 0.6]])
    logp = Z - np.log(np.exp(Z).sum(1, keepdims=True))
    want = np.mean(-(soft.numpy() * logp).sum(1))
    for name in ("cross_entropy", "focal"):
        crit = make_criterion(LossSettings(name=name, gamma=0.0), COUNTS)
        assert float(crit(torch.tensor(Z, dtype=torch.float32), soft)) == pytest.approx(want, rel=1e-5)


# ---------------------------------------------------------------------- samplers

LABELS = np.repeat(np.arange(3), [200, 50, 10])  # a long tail: 200, 50, 10
TRAIN = np.arange(len(LABELS))


def test_weighted_samplers_draw_classes_in_the_asked_proportions():
    rng = np.random.default_rng(0)
    balanced = np.concatenate([Weighted(LABELS, 0.0).epoch(TRAIN, e, rng) for e in range(40)])
    share = np.bincount(LABELS[balanced]) / len(balanced)
    assert len(balanced) == 40 * len(TRAIN)
    np.testing.assert_allclose(share, [1 / 3] * 3, atol=0.01)
    sqrt = np.concatenate([Weighted(LABELS, 0.5).epoch(TRAIN, e, rng) for e in range(40)])
    want = np.sqrt([200, 50, 10]) / np.sqrt([200, 50, 10]).sum()
    np.testing.assert_allclose(np.bincount(LABELS[sqrt]) / len(sqrt), want, atol=0.01)
    assert make_sampler(Resampling("class_balanced"), LABELS, ["a", "b", "c"]).__class__ is Weighted
    assert make_sampler(Resampling(), LABELS, ["a", "b", "c"]).__class__ is Shuffle


def test_imblearn_index_samplers_give_exact_target_counts_and_redraw_each_epoch():
    rng = np.random.default_rng(0)
    over = make_sampler(Resampling("random_over", targets={"b": 120, "c": 60}), LABELS, ["a", "b", "c"])
    assert isinstance(over, Imblearn)
    first, second = over.epoch(TRAIN, 0, rng), over.epoch(TRAIN, 1, rng)
    assert np.bincount(LABELS[first]).tolist() == [200, 120, 60] == np.bincount(LABELS[second]).tolist()
    assert set(first[LABELS[first] == 2]) == set(TRAIN[LABELS == 2])  # only repeats of real items
    assert not np.array_equal(first, second)
    under = make_sampler(Resampling("random_under"), LABELS, ["a", "b", "c"]).epoch(TRAIN, 0, rng)
    assert np.bincount(LABELS[under]).tolist() == [10, 10, 10]  # default: down to the smallest class
    default_over = make_sampler(Resampling("random_over"), LABELS, ["a", "b", "c"]).epoch(TRAIN, 0, rng)
    assert np.bincount(LABELS[default_over]).tolist() == [200, 200, 200]


def test_multiply_draws_targeted_classes_m_times():
    order = Multiply(Shuffle(), LABELS, [2], 4).epoch(TRAIN, 0, np.random.default_rng(0))
    assert np.bincount(LABELS[order]).tolist() == [200, 50, 40]
    assert (np.bincount(order[LABELS[order] == 2])[TRAIN[LABELS == 2]] == 4).all()


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (100, 4)), rng.normal(1.5, 1, (20, 4))]).astype(np.float32)  # overlapping: borders exist
    return X, np.repeat([0, 1], [100, 20])


@pytest.mark.parametrize(
    ("method", "targets", "want"),
    [
        ("smote", {1: 50}, [100, 50]),
        ("smote", {}, [100, 100]),
        ("borderline_smote", {1: 60}, [100, 60]),
        ("adasyn", {}, None),
        ("svm_smote", {1: 40}, [100, 40]),
        ("near_miss", {0: 30}, [30, 20]),
        ("tomek", {}, None),
        ("enn", {}, None),
        ("smote_enn", {}, None),
        ("smote_tomek", {}, None),
    ],
)
def test_feature_space_resampling_counts_and_origins(blobs, method, targets, want):
    X, y = blobs
    X_res, y_res, origin = resample_features(X, y, method, k_neighbors=5, targets=targets, seed=0)
    counts = np.bincount(y_res, minlength=2).tolist()
    if want is not None:
        assert counts == want
    kept = origin >= 0
    np.testing.assert_array_equal(X_res[kept], X[origin[kept]])  # kept rows are the input's rows
    np.testing.assert_array_equal(y_res[kept], y[origin[kept]])
    assert X_res.dtype == np.float32 and len(X_res) == len(y_res) == len(origin)
    if method in ("smote", "borderline_smote", "svm_smote"):
        assert (~kept).sum() == counts[1] - 20 and (y_res[~kept] == 1).all()  # new points of the small class only
    if method in ("tomek", "enn", "near_miss"):
        assert kept.all()  # cleaning only removes


# ---------------------------------------------------------------------- augmentations


@pytest.mark.parametrize("name", list(IMAGE_AUGMENTATIONS))
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 20, 24)])
def test_image_augmentations_keep_shape_and_labels_and_follow_the_seed(name, shape):
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (8, *shape), dtype=torch.uint8, generator=g)
    y = torch.arange(8) % 4
    aug = ImageAugmenter([name], strength=0.8, size=shape[1:], channels=shape[0], n_classes=4)
    torch.manual_seed(0)
    out, target = aug(x, y)
    torch.manual_seed(0)
    again, target_again = aug(x, y)
    assert out.shape == x.shape and torch.equal(out, again) and torch.equal(target, target_again)
    if name in ("mixup", "cutmix"):
        assert out.dtype == torch.float32 and target.shape == (8, 4)
        torch.testing.assert_close(target.sum(1), torch.ones(8))
    else:
        assert out.dtype == torch.uint8 and torch.equal(target, y)
    assert not torch.equal(out.float(), x.float())  # it did change the batch


def test_targeted_image_augmentation_leaves_other_classes_alone():
    x = torch.randint(0, 256, (12, 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(12) % 3
    torch.manual_seed(0)
    out, _ = ImageAugmenter(["rotate", "noise", "erasing"], strength=1.0, size=(16, 16), channels=1, n_classes=3, classes=[2])(x, y)
    assert torch.equal(out[y != 2], x[y != 2]) and not torch.equal(out[y == 2], x[y == 2])


WORD_OPS = ("swap", "delete", "insert", "char_noise")  # the ones that need no dictionary or translator


def test_text_operations_keep_labels_follow_the_seed_and_target_classes():
    assert set(WORD_OPS) | {"synonym", "back_translate"} == set(TEXT_AUGMENTATIONS)
    texts = ["the film was really very good indeed", "awful", "a plain and simple story about a dog"] * 4
    labels = np.array([0, 1, 2] * 4)
    ops = TextOps(list(WORD_OPS), strength=1.0, classes=[0, 2])
    a = ops(texts, labels, np.random.default_rng(0))
    b = ops(texts, labels, np.random.default_rng(0))
    assert a == b and len(a) == len(texts)
    assert a[1::3] == texts[1::3]  # class 1 is not targeted
    assert all(x != t for x, t in zip(a, texts) if len(t.split()) > 1 and t != "awful")
    for name in WORD_OPS:
        out = TextOps([name], strength=0.5)(["one", "two words"], np.array([0, 0]), np.random.default_rng(1))
        assert all(s.strip() for s in out)  # never an empty text


def test_make_augmenters_picks_by_modality():
    aug = Augmentation(image=["flip"], text=["swap"], classes=["b"])
    image, text = make_augmenters(aug, modality="image", n_classes=2, class_names=["a", "b"], image_shape=(8, 8))
    assert isinstance(image, ImageAugmenter) and text is None and image.classes.tolist() == [1]
    _, text = make_augmenters(aug, modality="text", n_classes=2, class_names=["a", "b"])
    assert isinstance(text, TextOps)


# ---------------------------------------------------------------------- checks against the data


COUNTS_BY_NAME = {"shirt": 500, "sandal": 40, "bag": 3}


@pytest.mark.parametrize(
    ("mitigations", "modality", "finetune", "words"),
    [
        (Mitigations(resample=Resampling("smote")), "image", "full", "smote resamples feature vectors, so it needs a linear probe"),
        (Mitigations(resample=Resampling("smote", k_neighbors=5)), "image", "linear_probe", "class bag has only 3 train item(s). Set k below 3"),
        (Mitigations(resample=Resampling("random_over", targets={"shirt": 100})), "image", "full", "can only add items: class shirt has 500"),
        (Mitigations(resample=Resampling("random_under", targets={"bag": 10})), "image", "full", "can only remove items: class bag has 3"),
        (Mitigations(resample=Resampling("random_over", targets={"hat": 10})), "image", "full", "no train items: hat"),
        (Mitigations(resample=Resampling("class_balanced", targets={"bag": 10})), "image", "full", "target counts apply to the over- and under-samplers"),
        (Mitigations(augment=Augmentation(text=["swap"])), "image", "full", "text augmentations (swap) need text data"),
        (Mitigations(augment=Augmentation(image=["flip"])), "text", "full", "image augmentations (flip) need images"),
        (Mitigations(augment=Augmentation(image=["flip"])), "image", "linear_probe", "augmentations cannot reach it"),
        (Mitigations(augment=Augmentation(image=["flip"], classes=["hat"])), "image", "full", "augmentation targets classes without train items: hat"),
        (Mitigations(augment=Augmentation(image=["flip"], multiplier=100)), "image", "full", None),
        (Mitigations(resample=Resampling("random_over", targets={"bag": 9_000_000})), "image", "full", "would draw 9,000,540 items per epoch"),
    ],
)  # fmt: skip
def test_settings_that_cannot_work_say_why_before_the_run(mitigations, modality, finetune, words):
    problems = check(mitigations.validate(), modality=modality, finetune=finetune, train_counts=COUNTS_BY_NAME)
    if words is None:
        assert problems == []  # 100 × 543 items is large but allowed
    else:
        assert any(words in p for p in problems), problems


# ---------------------------------------------------------------------- the effect on a long tail


def _long_tailed_digits(ratio: float = 20.0):
    """scikit-learn digits with the train split thinned to an exponential tail: class c keeps
    ratio^(−c/9) of its train items (class 0 all, class 9 1/ratio); val and test stay balanced."""
    from core.data import Dataset
    from core.data.demos import load_digits_8x8

    ds = load_digits_8x8().dataset
    rng = np.random.default_rng(0)
    keep = np.ones(len(ds), bool)
    for c in range(10):
        train = np.flatnonzero((ds.labels == c) & (ds.split == 0))
        n = max(2, round(len(train) * ratio ** (-c / 9)))
        keep[rng.choice(train, len(train) - n, replace=False)] = False
    return Dataset("digits-LT", "image", ds.items[keep], ds.labels[keep], ds.class_names, ds.split[keep])


def test_balanced_softmax_raises_tail_recall_on_a_long_tail(store):
    from core.train.config import RunConfig
    from core.train.worker import train_run

    ds = _long_tailed_digits()
    counts = np.bincount(ds.labels[ds.split == 0], minlength=10)
    assert counts[0] / counts[9] >= 18  # imbalance ratio ~20
    vid = store.save_dataset(ds, source="upload:digits-lt")
    recall = {}
    for name in ("cross_entropy", "balanced_softmax"):
        cfg = RunConfig(
            version_id=vid,
            model="small_cnn",
            epochs=6,
            batch_size=32,
            lr=3e-3,
            seed=0,
            device="cpu",
            temperature_scaling=False,
            mitigations=Mitigations(loss=LossSettings(name=name)),
        )
        run_id = store.create_run(vid, cfg.to_dict())
        assert train_run(store, run_id) == "finished", store.run(run_id).message
        m = store.metrics(run_id)
        last = m[(m.split == "test") & (m.step == m[m.split == "test"].step.max())].set_index("name")["value"]
        recall[name] = np.mean([last[f"recall/{c}"] for c in (7, 8, 9)])  # the three rarest classes
        assert store.run(run_id).config["mitigations"]["loss"]["name"] == name  # stored with the run
    assert recall["balanced_softmax"] > recall["cross_entropy"], recall


def test_weight_balancing_replaces_the_runs_weight_decay_and_shrinks_the_weights(store, monkeypatch):
    """Weight balancing's decay reaches the optimizer in place of the run's own, for the weights (not
    the biases), and a strong decay leaves the classifier's weights smaller than the default's."""
    import core.train.loop as loop
    from core.train.checkpoints import load_checkpoint
    from core.train.config import RunConfig
    from core.train.worker import train_run

    seen: list[float] = []
    real = loop.make_optimizer

    def spy(net, **kw):
        seen.append(kw["weight_decay"])
        return real(net, **kw)

    monkeypatch.setattr(loop, "make_optimizer", spy)
    vid = store.save_dataset(_long_tailed_digits(), source="upload:digits-lt")
    norms = {}
    for decay in (0.0, 2.0):
        m = Mitigations(loss=LossSettings(name="balanced_softmax", weight_decay=decay))
        cfg = RunConfig(version_id=vid, model="small_cnn", epochs=3, batch_size=32, lr=3e-3, seed=0, device="cpu", mitigations=m)
        run_id = store.create_run(vid, cfg.to_dict())
        assert train_run(store, run_id) == "finished", store.run(run_id).message
        state = load_checkpoint(run_id, "last", home=store.home)["model"]
        norms[decay] = float(sum(v.float().norm() ** 2 for k, v in state.items() if k.endswith("weight") and v.ndim >= 2) ** 0.5)
    assert seen == [RunConfig(version_id=vid).weight_decay, 2.0]
    assert norms[2.0] < 0.95 * norms[0.0], norms  # 0.88 of it here: 48 steps, each shrinking by lr·decay


def test_weight_balancing_is_checked_named_and_drawn():
    from core.compare.setting_words import mitigation_words
    from core.mitigate.fields import from_widgets, widget_values

    m = Mitigations(loss=LossSettings(name="balanced_softmax", weight_decay=1.0))
    assert "weight_decay=1" in m.validate().active
    assert "weight decay 1 (weight balancing)" in mitigation_words(m)
    assert widget_values(m)["tr_loss_wd"] == 1.0
    with pytest.raises(ValueError, match=r"mitigations\.loss\.weight_decay"):
        Mitigations(loss=LossSettings(weight_decay=-0.5)).validate()
    assert Mitigations.from_dict(m.to_dict()) == (m, {})
    assert from_widgets(widget_values(m), modality="image", finetune="linear_probe") == m


def test_deferred_resampling_draws_every_item_once_until_the_stated_epoch():
    from core.mitigate.sampler import Deferred, second_stage

    y = np.array([0] * 90 + [1] * 10)
    train = np.arange(100)
    r = Resampling("class_balanced", resample_from=0.5)
    sampler = make_sampler(r, y, ["a", "b"], epochs=4)
    assert isinstance(sampler, Deferred) and sampler.start == 2
    rng = np.random.default_rng(0)
    draws = [sampler.epoch(train, e, rng) for e in range(4)]
    for e in (0, 1):  # the first stage: the data as it is, every item once
        assert np.array_equal(np.sort(draws[e]), train)
    for e in (2, 3):  # the second stage: class-balanced, the rare class about half the draws
        assert 0.35 < float(np.mean(y[draws[e]] == 1)) < 0.65
    assert second_stage(Resampling("sqrt", resample_from=0.1), 3) == 1  # the first stage keeps an epoch
    assert second_stage(Resampling("sqrt", resample_from=0.9), 2) == 1  # and the second stage one
    assert not isinstance(make_sampler(Resampling("class_balanced"), y, ["a", "b"], epochs=4), Deferred)


def test_the_logit_offsets_follow_the_epochs_draws():
    """Balanced softmax and logit adjustment stand for the prior the model trains under: told the
    epoch's draws, the offsets are those draws' counts; class-balanced draws cancel them (cross-
    entropy); draws of the train split as it is give the split's offsets; class weights stay."""
    z, y = torch.tensor(Z, dtype=torch.float32), torch.tensor(Y)
    bs = make_criterion(LossSettings(name="balanced_softmax"), COUNTS)
    split = np.repeat([0, 1, 2], COUNTS.astype(int))  # every train item once
    bs.begin_epoch(0, 2, drawn=split)
    assert float(bs(z, y)) == pytest.approx(_loss(name="balanced_softmax"), rel=1e-6)
    balanced = np.repeat([0, 1, 2], 6)  # 6 of each class, as a class-balanced sampler draws them
    bs.begin_epoch(1, 2, drawn=np.concatenate([balanced, [-1, -1]]))  # unknown labels are not counted
    assert float(bs(z, y)) == pytest.approx(_loss(), rel=1e-6)  # equal offsets: plain cross-entropy
    la = make_criterion(LossSettings(name="logit_adjusted", tau=0.5), COUNTS)
    la.begin_epoch(0, 1, drawn=np.repeat([0, 1, 2], [2, 1, 1]))
    assert float(la(z, y)) == pytest.approx(_nll(Z + 0.5 * np.log(np.array([2, 1, 1]) / 4), Y).mean(), rel=1e-6)
    weighted = make_criterion(LossSettings(class_weights="inverse"), COUNTS)
    weighted.begin_epoch(0, 1, drawn=balanced)
    assert float(weighted(z, y)) == pytest.approx(_loss(class_weights="inverse"), rel=1e-6)


def test_two_stage_settings_are_checked_with_what_to_change():
    with pytest.raises(ValueError, match="set resample_from above 0"):
        Mitigations(resample=Resampling("class_balanced", retrain_head=True)).validate()
    counts = {"a": 90, "b": 10}
    deferred_nothing = Mitigations(resample=Resampling("none", resample_from=0.5))
    assert any("deferred re-sampling" in p for p in check(deferred_nothing, modality="image", finetune="full", train_counts=counts))
    crt = Mitigations(resample=Resampling("class_balanced", resample_from=0.5, retrain_head=True))
    assert check(crt, modality="image", finetune="full", train_counts=counts) == []
    assert any("linear probe" in p for p in check(crt, modality="image", finetune="linear_probe", train_counts=counts))
    assert any("cRT" in p for p in check(crt, modality="tokens", finetune="full", train_counts=counts))


def test_head_retrain_reinitialises_the_head_and_freezes_the_rest():
    from torch import nn

    from core.mitigate.two_stage import HeadRetrain, classifier_head
    from core.models.build import Built

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    built = Built(net, feed="vector", arch="mlp")
    opt = torch.optim.AdamW(net.parameters(), lr=0.1)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))

    def step() -> None:
        built.train_mode()
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    step()
    head = classifier_head(net)
    assert head is net[3]
    stage = HeadRetrain(start=2)
    stage.begin_epoch(1, built, opt)  # not yet
    assert all(p.requires_grad for p in net.parameters())
    trained_head = head.weight.detach().clone()
    stage.begin_epoch(2, built, opt)
    assert not torch.equal(head.weight, trained_head)  # re-initialised
    assert head.weight not in opt.state and head.bias not in opt.state
    features = {k: v.detach().clone() for k, v in net.state_dict().items() if not k.startswith("3.")}
    after_reset = head.weight.detach().clone()
    for _ in range(3):
        step()
    for k, v in net.state_dict().items():
        if not k.startswith("3."):
            assert torch.equal(v, features[k]), k  # frozen: weights and batch-norm statistics alike
    assert not torch.equal(head.weight, after_reset)  # the head alone trained
    stage.begin_epoch(2, built, opt)  # once only
    assert not torch.equal(head.weight, after_reset)


def test_a_crt_run_switches_at_the_stated_epoch_and_keeps_the_features(store, monkeypatch):
    from core.mitigate import two_stage
    from core.train.checkpoints import load_checkpoint
    from core.train.config import RunConfig
    from core.train.worker import train_run

    switched: list[tuple[int, dict]] = []
    real = two_stage.HeadRetrain.begin_epoch

    def spy(self, epoch, built, optimizer):
        was = self.done
        real(self, epoch, built, optimizer)
        if self.done and not was:
            switched.append((epoch, {k: v.detach().clone() for k, v in built.net.state_dict().items()}))

    monkeypatch.setattr(two_stage.HeadRetrain, "begin_epoch", spy)
    vid = store.save_dataset(_long_tailed_digits(), source="upload:digits-lt")
    m = Mitigations(resample=Resampling("class_balanced", resample_from=0.5, retrain_head=True))
    cfg = RunConfig(version_id=vid, model="small_cnn", epochs=4, batch_size=32, lr=3e-3, seed=0, device="cpu", mitigations=m)
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished", store.run(run_id).message
    assert [e for e, _ in switched] == [2]
    at_switch = switched[0][1]
    last = load_checkpoint(run_id, "last", home=store.home)["model"]
    head = [k for k in last if k.endswith("weight") and last[k].ndim == 2][-1].rsplit(".", 1)[0]
    changed = sorted(k for k in last if not torch.equal(last[k], at_switch[k]))
    assert changed == sorted([f"{head}.weight", f"{head}.bias"]), changed


def test_the_preview_says_where_a_setting_traded_hallucination_for_recall():
    from core.mitigate.presets import preset
    from core.mitigate.preview import hallucination_trades

    assert hallucination_trades(Mitigations()) == []
    assert hallucination_trades(Mitigations(loss=LossSettings(name="balanced_softmax", weight_decay=3.0))) == []  # the preset
    assert hallucination_trades(Mitigations(loss=LossSettings(name="focal"))) == []  # fewer confident errors, not more
    over = hallucination_trades(Mitigations(resample=Resampling("random_over")))
    assert len(over) == 1 and "3.5 % → 7.2 %" in over[0]
    smote = hallucination_trades(Mitigations(resample=Resampling("borderline_smote"), loss=LossSettings(name="balanced_softmax")))
    assert len(smote) == 2 and "3 of 5 orders on the images" in smote[0] and "weight balancing" in smote[1]
    bs_sqrt = Mitigations(loss=LossSettings(name="balanced_softmax"), resample=Resampling("sqrt"))
    assert [n.split()[0] for n in hallucination_trades(bs_sqrt)] == ["Balanced", "Square-root"]
    assert "2.4 % to 3.2 %" in hallucination_trades(bs_sqrt)[1]
    smoothed = Mitigations(loss=LossSettings(name="balanced_softmax", label_smoothing=0.1), resample=Resampling("sqrt"))
    assert any("after the run's temperature scaling" in n and "2 of 5 orders" in n for n in hallucination_trades(smoothed))
    whole, probe = (preset("long_tail", modality="image", finetune=f) for f in ("full", "linear_probe"))
    assert (whole.loss.name, whole.loss.weight_decay, whole.resample.method, whole.loss.label_smoothing) == (
        "balanced_softmax",
        3,
        "sqrt",
        0,
    )
    assert (probe.loss.name, probe.loss.weight_decay, probe.resample.method, probe.loss.label_smoothing) == (
        "balanced_softmax",
        3,
        "none",
        0,
    )
    for m in (whole, probe):  # neither preset is warned about: neither raised it, as trained or after temperature scaling
        assert hallucination_trades(m) == []


# ---------------------------------------------------------------------- previews


def test_epoch_counts_per_sampler():
    from core.mitigate.preview import epoch_counts

    counts = {"a": 200, "b": 50, "c": 10}
    assert epoch_counts(Mitigations(), counts) == {"a": 200, "b": 50, "c": 10}
    assert epoch_counts(Mitigations(resample=Resampling("class_balanced")), counts) == {"a": 260 / 3, "b": 260 / 3, "c": 260 / 3}
    sqrt = epoch_counts(Mitigations(resample=Resampling("sqrt")), counts)
    assert sqrt["a"] / sqrt["c"] == pytest.approx(math.sqrt(20)) and sum(sqrt.values()) == pytest.approx(260)
    assert epoch_counts(Mitigations(resample=Resampling("random_over", targets={"c": 40})), counts) == {"a": 200, "b": 50, "c": 40}
    assert epoch_counts(Mitigations(resample=Resampling("random_under")), counts) == {"a": 10, "b": 10, "c": 10}
    targeted = Mitigations(augment=Augmentation(image=["flip"], classes=["c"], multiplier=3))
    assert epoch_counts(targeted, counts) == {"a": 200, "b": 50, "c": 30}
    assert epoch_counts(Mitigations(resample=Resampling("tomek")), counts) is None  # only the data can tell


def test_resampling_preview_on_embeddings(blobs):
    from core.mitigate.preview import resample_on_embeddings

    X, y = blobs
    result = resample_on_embeddings(X, y, ["big", "small"], Mitigations(resample=Resampling("smote", targets={"small": 70})))
    assert result.before == {"big": 100, "small": 20} and result.after == {"big": 100, "small": 70}
    assert result.xy.shape == (170, 2) and int(result.synthetic.sum()) == 50 and (result.labels[result.synthetic] == "small").all()
    cleaned = resample_on_embeddings(X, y, ["big", "small"], Mitigations(resample=Resampling("enn", k_neighbors=3)))
    assert len(cleaned.removed_xy) == 120 - sum(cleaned.after.values()) > 0 and not cleaned.synthetic.any()


def test_text_preview_marks_what_changed():
    from core.mitigate.preview import augment_texts, highlight_changes

    assert highlight_changes("a b c", "a c x") == "a <del>b</del> c <ins>x</ins>"
    assert highlight_changes("<b>", "<i>") == "<del>&lt;b&gt;</del> <ins>&lt;i&gt;</ins>"  # texts are escaped
    out = augment_texts(["the quick brown fox jumps"], np.array([0]), Augmentation(text=["delete"], strength=1.0), seed=3)
    assert out == augment_texts(["the quick brown fox jumps"], np.array([0]), Augmentation(text=["delete"], strength=1.0), seed=3)
    assert len(out[0].split()) < 5


# ---------------------------------------------------------------------- decisions


def test_selective_answers_only_above_the_threshold():
    from core import metrics as M

    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
    labels = np.array([0, 1, 1, -1])  # the last row's class was absent from training: not counted
    assert M.selective(probs, labels, 0.65) == {"coverage": 2 / 3, "risk": 0.0}
    assert M.selective(probs, labels, 0.0) == {"coverage": 1.0, "risk": 1 / 3}
    assert M.selective(probs, labels, 0.95)["coverage"] == 0.0 and math.isnan(M.selective(probs, labels, 0.95)["risk"])


def test_threshold_moving_finds_offsets_that_favour_an_under_predicted_class():
    from core.metrics import macro_f1 as _macro_f1
    from core.train.evaluate import fit_class_offsets

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 100)
    logits = rng.normal(size=(300, 3)) + 2.0 * np.eye(3)[y]
    logits[:, 2] -= 2.5  # class 2 is hardly ever predicted
    before = _macro_f1(logits.argmax(1), y, 3)
    b = fit_class_offsets(logits, y)
    after = _macro_f1((logits + b).argmax(1), y, 3)
    assert after > before + 0.1 and b[2] - b[:2].mean() >= 1.5  # the offsets lift class 2
    assert (fit_class_offsets(logits, np.full(300, -1)) == 0).all()  # no known rows: no change


def test_threshold_moving_keeps_no_offsets_that_only_fit_a_small_val_split():
    from core.metrics import macro_f1 as _macro_f1
    from core.train.evaluate import fit_class_offsets

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 18)  # a val split of 180 items, no class favoured
    logits = rng.normal(size=(180, 10)) + 2.5 * np.eye(10)[y]
    y_test = np.repeat(np.arange(10), 2000)
    test = rng.normal(size=(20000, 10)) + 2.5 * np.eye(10)[y_test]
    fitted = fit_class_offsets(logits, y, cross_check=False)
    assert np.any(fitted) and _macro_f1((logits + fitted).argmax(1), y, 10) > _macro_f1(logits.argmax(1), y, 10)
    assert _macro_f1((test + fitted).argmax(1), y_test, 10) < _macro_f1(test.argmax(1), y_test, 10)  # it does not carry over
    assert not np.any(fit_class_offsets(logits, y))  # the half-and-half check keeps them out


def test_a_run_reports_threshold_moving_and_abstention(store):
    from core.metrics.results import RunResults
    from core.mitigate.settings import Decision
    from core.train.config import RunConfig
    from core.train.worker import train_run

    vid = store.save_dataset(_long_tailed_digits(), source="upload:digits-lt")
    cfg = RunConfig(
        version_id=vid,
        model="small_cnn",
        epochs=3,
        batch_size=32,
        lr=3e-3,
        seed=0,
        device="cpu",
        mitigations=Mitigations(decision=Decision(threshold_moving=True, abstain_below=0.8)),
    )
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished", store.run(run_id).message
    res = RunResults(store, run_id)
    step = res.best_step
    assert res.variant_step("tm") == res.variant_step("ts") == step
    # fitted on val from zero offsets: val macro-F1 can only rise (over the temperature-scaled one)
    assert res.at("macro_f1", step, "val_tm") >= res.at("macro_f1", step, "val_ts")
    assert set(res.per_class("offset", "test_tm", step)) == set(range(10))
    assert "threshold moving: test macro-F1" in store.run(run_id).message
    # abstention: the stored coverage and risk are what the stored predictions give
    preds = res.predictions("test", step=step)
    answered = preds[preds.conf >= 0.8]
    assert res.at("abstain_coverage", step) == pytest.approx(len(answered) / len(preds))
    assert res.at("abstain_risk", step) == pytest.approx((answered.pred != answered.label).mean())
    assert len(res.predictions("test_tm", step=step)) == len(preds)


# ---------------------------------------------------------------------- in-run cleaning


def _noisy_digits(rate: float = 0.3):
    from core.data import Dataset
    from core.data.demos import load_digits_8x8
    from core.diagnose.synthetic import inject_noise, make_noise_matrix

    ds = load_digits_8x8().dataset
    labels = ds.labels.copy()
    train = ds.split == 0
    labels[train], flipped = inject_noise(labels[train], make_noise_matrix(10, kind="symmetric", rate=rate), seed=0)
    return Dataset("digits-noisy", "image", ds.items, labels, ds.class_names, ds.split), np.flatnonzero(train)[flipped]


@pytest.mark.usefixtures("shared_embeddings")
def test_cleaning_decisions_by_plan_detector_and_threshold():
    from core.mitigate.in_run_cleaning import decisions
    from core.mitigate.settings import Cleaning

    ds, flipped = _noisy_digits()
    drop, relabel = decisions(Cleaning(action="drop", source="plan", plan_drop=[3, 1], plan_relabel={"7": 2}), ds)
    assert drop.tolist() == [1, 3] and relabel == {7: 2}
    with pytest.raises(ValueError, match="names items \\[99999\\]"):
        decisions(Cleaning(action="drop", source="plan", plan_drop=[99999]), ds)
    assert decisions(Cleaning(action="none"), ds)[0].size == 0
    drop, _ = decisions(Cleaning(action="drop", source="detector"), ds)
    caught = np.isin(flipped, drop).mean()
    assert caught > 0.6 and len(drop) < 2 * len(flipped)  # the detector finds most flipped labels
    _, relabel = decisions(Cleaning(action="relabel", source="threshold", threshold=0.3), ds)
    assert relabel and all(ds.labels[r] != c for r, c in relabel.items())


@pytest.mark.usefixtures("shared_embeddings")
def test_in_run_cleaning_trains_on_fewer_noisy_labels_and_leaves_val_and_test_alone(store, capsys):
    from core.metrics.results import RunResults
    from core.mitigate.settings import Cleaning
    from core.train.config import RunConfig
    from core.train.worker import train_run

    ds, _ = _noisy_digits()
    vid = store.save_dataset(ds, source="upload:digits-noisy")
    f1 = {}
    for action in ("none", "drop"):
        cfg = RunConfig(
            version_id=vid,
            model="small_cnn",
            epochs=4,
            batch_size=32,
            lr=3e-3,
            seed=0,
            device="cpu",
            temperature_scaling=False,
            mitigations=Mitigations(clean=Cleaning(action=action)),
        )
        run_id = store.create_run(vid, cfg.to_dict())
        assert train_run(store, run_id) == "finished", store.run(run_id).message
        res = RunResults(store, run_id)
        f1[action] = res.at("macro_f1", res.best_step)
        n_test = len(res.predictions("test"))
        assert n_test == int((ds.split == 2).sum())  # test is scored in full either way
    assert "in-run cleaning: " in capsys.readouterr().out  # "… train items left out, 0 relabelled"
    assert f1["drop"] > f1["none"], f1


@needs_asset("wordnet")
def test_synonym_replacement_uses_wordnet_and_keeps_function_words():
    from core.mitigate.language import synonyms

    assert "film" in synonyms("movie") and synonyms("the") == () and synonyms("42") == ()
    ops = TextOps(["synonym"], strength=1.0)
    text = ["The movie was terrible."]
    out = ops(text, np.array([0]), np.random.default_rng(0))
    assert out == ops(text, np.array([0]), np.random.default_rng(0)) and out != text
    assert out[0].startswith("The ") and out[0].endswith(".") and " was " in out[0]  # function words and punctuation stay


@pytest.mark.skipif(not __import__("core.mitigate.language", fromlist=["x"]).apertium_ready(), reason="Apertium eng-spa is not installed")
def test_back_translation_goes_through_spanish_and_keeps_one_text_per_input():
    from core.mitigate.language import back_translate

    texts = ["The movie was wonderful and I loved every minute of it.", "Worst service ever.", "one\ntwo"]
    out = back_translate(texts)
    assert len(out) == 3 and out[0] != texts[0] and all(o.strip() for o in out) and "\n" not in out[2]
    ops = TextOps(["back_translate"], strength=0.5)
    many = ["This is a very good phone with a great screen."] * 20
    changed = ops(many, np.zeros(20, int), np.random.default_rng(0))
    assert 0 < sum(c != t for c, t in zip(changed, many)) < 20  # about half of the texts


# ---------------------------------------------------------------------- the unlabelled pool


def _digits_with_pool(share: float = 0.7):
    """Digits with ``share`` of the train items' labels removed (the unlabelled pool)."""
    from core.data import Dataset
    from core.data.demos import load_digits_8x8

    ds = load_digits_8x8().dataset
    rng = np.random.default_rng(0)
    train = np.flatnonzero(ds.split == 0)
    hidden = np.sort(rng.choice(train, round(share * len(train)), replace=False))
    labels = ds.labels.copy()
    labels[hidden] = -1
    return Dataset("digits-pool", "image", ds.items, labels, ds.class_names, ds.split), hidden, ds.labels[hidden]


@pytest.mark.usefixtures("shared_embeddings")
def test_the_pool_is_left_out_of_profile_diagnosis_and_the_train_split():
    from core.data.profile import profile
    from core.diagnose.pipeline import diagnose
    from core.train.config import RunConfig
    from core.train.run_data import split_data

    ds, hidden, _ = _digits_with_pool()
    prof = profile(ds)
    assert prof.n_unlabelled == len(hidden) and int(prof.counts["train"].sum()) == int(((ds.split == 0) & ds.labelled).sum())
    d = diagnose(ds, cache=False)
    assert not d.issues.is_issue[hidden].any() and np.isnan(d.issues.score[hidden]).all() and (d.issues.suggested[hidden] == -1).all()
    assert d.issues.n_issues == int(d.issues.is_issue[ds.labelled].sum()) > 0 and d.map2d.shape == (len(ds), 2)
    assert int(d.coverage["train"].sum()) == int(prof.counts["train"].sum())
    data = split_data(ds, RunConfig(version_id=1))
    assert len(data.pool) == len(hidden) and set(data.rows[data.pool]) == set(hidden) and (data.y[data.pool] == -1).all()
    assert not np.isin(data.rows[data.train], hidden).any() and (data.y[data.train] >= 0).all()


def test_label_spreading_labels_pool_points_by_their_neighbours(blobs):
    from core.mitigate.label_spreading import spread_labels

    X, y = blobs
    far = np.vstack([np.random.default_rng(1).normal(0, 0.5, (30, 4)), np.random.default_rng(2).normal(6, 0.5, (30, 4))]).astype(np.float32)
    truth = np.repeat([0, 1], 30)
    separated = np.vstack([X[:100], X[100:] + 4.5]).astype(np.float32)  # push class 1 away from class 0
    chosen, labels, conf = spread_labels(separated, y, far, k=5, threshold=0.8)
    assert len(conf) == 60 and len(chosen) >= 50
    assert (labels == truth[chosen]).mean() >= 0.95


@pytest.mark.usefixtures("shared_embeddings")
def test_pseudo_labelling_and_label_spreading_grow_the_train_split(store, capsys):
    from core.metrics.results import RunResults
    from core.mitigate.settings import SemiSupervision
    from core.train.config import RunConfig
    from core.train.worker import train_run

    ds, hidden, _ = _digits_with_pool()
    vid = store.save_dataset(ds, source="upload:digits-pool")
    base = dict(version_id=vid, model="small_cnn", epochs=4, batch_size=32, lr=3e-3, seed=0, device="cpu", temperature_scaling=False)
    runs = {}
    for method in ("pseudo_label", "label_spreading"):
        cfg = RunConfig(**base, mitigations=Mitigations(semi=SemiSupervision(method=method, threshold=0.9, rounds=2)))
        runs[method] = store.create_run(vid, cfg.to_dict())
        assert train_run(store, runs[method]) == "finished", store.run(runs[method]).message
    out = capsys.readouterr().out
    assert out.count("pseudo-labelling after epoch") == 2 and "label spreading: " in out
    res = RunResults(store, runs["pseudo_label"])
    added = res.split_rows("train")
    counts = added[added.name == "pseudo_labelled"].value.tolist()
    assert len(counts) == 2 and 0 < counts[-1] <= len(hidden)
    # more train items than the labelled ones: the loop ran more steps than planned from them
    n_labelled = int(((ds.split == 0) & ds.labelled).sum())
    planned = 4 * -(-n_labelled // 32)
    assert res.eval_steps("test")[-1] > planned


def test_the_pool_settings_are_checked_against_the_data():
    from core.mitigate.settings import SemiSupervision

    m = Mitigations(semi=SemiSupervision(method="pseudo_label", rounds=3))
    problems = check(m, modality="image", finetune="full", train_counts={"a": 10, "b": 10}, n_unlabelled=0, epochs=2)
    assert any("pseudo-label needs an unlabelled pool, and this dataset has none" in p for p in problems)
    assert any("pseudo-labelling 3 time(s) needs at least 4 epochs" in p for p in problems)
    assert check(m, modality="image", finetune="full", train_counts={"a": 10, "b": 10}, n_unlabelled=50, epochs=4) == []


@pytest.mark.parametrize("modality", ["image", "text", "tabular"])
@pytest.mark.parametrize("finetune", ["full", "last_n", "linear_probe"])
def test_every_preset_can_run_where_it_is_offered(modality, finetune):
    from core.mitigate.checks import check
    from core.mitigate.presets import preset, presets_for

    for name in presets_for(modality):
        m = preset(name, modality=modality, finetune=finetune)
        assert check(m, modality=modality, finetune=finetune, train_counts={"a": 100, "b": 10}, epochs=3) == [], (name, modality, finetune)
    assert preset("missing_class", modality="image", finetune="full").augment.image == ["mixup"]
    assert preset("missing_class", modality="image", finetune="linear_probe").augment.image == []
