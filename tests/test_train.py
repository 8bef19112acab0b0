"""The training loop, run in this process (core.train.worker.train_run) on tiny real data."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from core.data import Dataset
from core.data.demos import load_digits_8x8
from core.metrics import SUMMARY_KEYS
from core.metrics.results import RunResults
from core.mitigate.sampler import Shuffle
from core.store import RunFiles
from core.train.checkpoints import load_checkpoint
from core.train.config import RunConfig
from core.train.evaluate import fit_temperature, predict_logits, report
from core.train.inputs import Inputs, make_batches
from core.train.run_data import RunData
from core.train.schedule import lr_factor
from core.train.worker import train_run
from tests.conftest import needs_asset
from tests.test_models import tiny_bert_dir

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("one_torch_thread")]


def _digits(store, *, drop_from_train: int | None = None) -> int:
    ds = load_digits_8x8().dataset
    if drop_from_train is not None:  # the class is never seen in training: its test rows are "unknown"
        split = ds.split.copy()
        split[(ds.labels == drop_from_train) & (split == 0)] = 2
        ds = Dataset(ds.name, ds.modality, ds.items, ds.labels, ds.class_names, split)
    return store.save_dataset(ds, source="upload:digits")


def _run(store, **cfg) -> tuple[int, str]:
    cfg = RunConfig(**{"model": "small_cnn", "epochs": 2, "batch_size": 64, "lr": 3e-3, **cfg})
    run_id = store.create_run(cfg.version_id, cfg.to_dict())
    return run_id, train_run(store, run_id)


def _final(store, run_id, split="test") -> dict[str, float]:
    m = store.metrics(run_id)
    m = m[m.split == split]
    last = m[m.step == m.step.max()]
    return dict(zip(last.name, last.value))


def test_a_selection_window_is_one_rule_in_the_loop_the_checkpoint_and_the_reader(store, home):
    from core.metrics.keys import best_index

    vid = _digits(store)
    run_id, status = _run(store, version_id=vid, epochs=2, eval_every_steps=5, selection_window=2)
    assert status == "finished" and "(mean of 2 evaluations)" in store.run(run_id).message
    res = RunResults(store, run_id)
    val = res.split_rows("val")
    val = val[val["name"] == "macro_f1"]
    steps, values = val["step"].tolist(), val["value"].tolist()
    assert len(steps) >= 5
    picked = steps[best_index("macro_f1", values, 2)]
    assert res.result_step == picked == res.best_val_step()  # the worker's summary and the reader agree
    assert load_checkpoint(run_id, "best", home=home)["step"] == picked


def test_digits_run_writes_metrics_predictions_checkpoints_and_artifacts(store, home):
    vid = _digits(store)
    run_id, status = _run(store, version_id=vid)
    assert status == "finished"
    row = store.run(run_id)
    assert row.status == "finished" and row.progress == 1.0 and row.finished_at and row.pid
    assert "best val macro_f1" in row.message
    m = store.metrics(run_id)
    assert set(m.split) == {"train", "val", "test", "val_ts", "test_ts"}
    # two evaluations (one per epoch), every summary key and the per-class metrics of 10 classes
    steps = sorted(int(s) for s in m[m.split == "test"].step.unique())
    assert len(steps) == 2 and RunFiles(run_id).eval_steps() == steps
    test = _final(store, run_id)
    assert set(SUMMARY_KEYS) <= set(test)
    assert {f"{k}/{c}" for k in ("precision", "recall", "f1") for c in range(10)} <= set(test)
    assert test["accuracy"] > 0.8 and test["n_unknown"] == 0
    train_rows = m[m.split == "train"]
    assert {"loss", "lr", "samples_per_s", "eta_s", "train_runtime_s", "train_samples_per_s", "first_step_s"} <= set(train_rows.name)
    assert set(train_rows[train_rows.name == "first_step_s"].step) == {1}
    assert train_rows[train_rows.name == "loss"].step.min() == 1  # the first point comes at step 1
    # temperature scaling: before = test at the best step, after = test_ts at the same step
    ts = _final(store, run_id, "test_ts")
    best = json.loads((home / "runs" / str(run_id) / "summary.json").read_text())
    assert ts["temperature"] == pytest.approx(best["temperature"]) and ts["temperature"] > 0
    assert set(m[m.split == "test_ts"].step) == {best["best_step"]}
    assert ts["accuracy"] == pytest.approx(_final_at(store, run_id, "test", best["best_step"])["accuracy"])  # T keeps argmax
    # predictions: every test item at every evaluation, labels in dataset class indices
    n_test = int((store.load_dataset(vid).split == 2).sum())
    preds = store.predictions(run_id, step=steps[-1])
    assert len(preds) == n_test and preds.conf.between(0, 1).all() and set(preds.pred) <= set(range(10))
    assert (preds.label.to_numpy() == store.load_dataset(vid).labels[preds.item.to_numpy()]).all()
    assert len(store.predictions(run_id, split="test_ts")) == n_test
    # artifacts per evaluation; the best step also has the calibrated bins
    art = RunFiles(run_id).eval_artifacts(best["best_step"])
    assert art["classes"] == list(range(10)) and art["absent_classes"] == []
    assert art["test"]["confusion"].shape == (10, 10) and art["test"]["confusion"].sum() == n_test
    assert art["test"]["reliability"]["count"].sum() == n_test and len(art["test"]["reliability"]["mean_conf"]) == 15
    assert "test_ts" in art and "val_ts" in art
    # checkpoints are plain state dicts that load with weights_only=True
    for which in ("best", "last"):
        ck = load_checkpoint(run_id, which)
        assert ck["arch"] == "small_cnn" and ck["classes"] == list(range(10)) and "features.0.0.weight" in ck["model"]
    assert load_checkpoint(run_id, "last")["step"] == steps[-1]


def _final_at(store, run_id, split, step):
    m = store.metrics(run_id)
    m = m[(m.split == split) & (m.step == step)]
    return dict(zip(m.name, m.value))


def test_same_seed_same_metrics_and_another_seed_differs(store):
    vid = _digits(store)
    a = _final(store, _run(store, version_id=vid, epochs=1, seed=7)[0])
    b = _final(store, _run(store, version_id=vid, epochs=1, seed=7)[0])
    c = _final(store, _run(store, version_id=vid, epochs=1, seed=8)[0])
    np.testing.assert_equal(a, b)  # NaN-aware: undefined metrics are NaN in both
    assert a["nll"] != c["nll"]


def test_class_absent_from_train_counts_as_unknown(store):
    vid = _digits(store, drop_from_train=9)
    run_id, status = _run(store, version_id=vid, epochs=2)
    assert status == "finished"
    test = _final(store, run_id)
    n_nines = int(((store.load_dataset(vid).labels == 9) & (store.load_dataset(vid).split == 2)).sum())
    assert test["n_unknown"] == n_nines > 0
    assert "recall/9" not in test and "recall/8" in test
    preds = store.predictions(run_id)
    assert 9 not in set(preds.pred) and (preds.label == 9).sum() == n_nines
    # the unknown-class metrics, recomputed from the stored predictions (conf = top-label probability)
    from sklearn.metrics import roc_auc_score

    unknown = (preds.label == 9).to_numpy()
    assert test["forced_known_rate"] == pytest.approx((preds.conf[unknown] >= 0.9).mean())
    assert test["unknown_auroc_msp"] == pytest.approx(roc_auc_score(unknown, -preds.conf.to_numpy()))
    art = RunFiles(run_id).eval_artifacts()
    assert art["classes"] == list(range(9)) and art["absent_classes"] == [9]
    assert art["test"]["unknown_confusion"].shape == (1, 9) and art["test"]["unknown_confusion"].sum() == n_nines


def test_early_stopping_and_eval_every_steps(store):
    vid = _digits(store)
    # an lr so small that val macro-F1 soon stops improving: patience 1 stops at the first
    # evaluation that is not a new best, long before the 20 epochs
    run_id, status = _run(store, version_id=vid, epochs=20, lr=1e-9, eval_every_steps=5, patience=1, temperature_scaling=False)
    assert status == "finished"
    assert "early stopping" in store.run(run_id).message
    m = store.metrics(run_id)
    val = m[(m.split == "val") & (m.name == "macro_f1")].sort_values("step")
    assert val.step.tolist() == list(range(5, 5 * len(val) + 1, 5)) and len(val) < 20 * 23 // 5
    assert val.value.iloc[-1] <= val.value.iloc[:-1].max()  # the last one was no improvement
    assert "val_ts" not in set(m.split)


def test_checkpoint_last_keeps_and_scales_the_last_evaluation(store, home):
    vid = _digits(store)
    with pytest.raises(ValueError, match="Set patience to 0, or checkpoint to 'best'"):
        RunConfig(version_id=vid, model="small_cnn", checkpoint="last", patience=2).validate()
    with pytest.raises(ValueError, match="checkpoint must be best or last"):
        RunConfig(version_id=vid, model="small_cnn", checkpoint="first").validate()
    run_id, status = _run(store, version_id=vid, epochs=1, eval_every_steps=8, checkpoint="last")
    assert status == "finished"
    m = store.metrics(run_id)
    steps = sorted(m[m.split == "test"].step.unique())
    assert steps == [8, 16, 23]
    summary = RunFiles(run_id, home=home).read_json("summary.json")
    assert summary["best_step"] == 23 and summary["checkpoint"] == "last"
    assert set(m[m.split == "test_ts"].step) == {23}  # temperature scaling fitted at the last evaluation
    assert load_checkpoint(run_id, "best", home=home)["step"] == 23  # the kept checkpoint is the last one
    assert "result at the last evaluation, step 23" in store.run(run_id).message
    res = RunResults(store, run_id)
    assert res.checkpoint == "last" and res.result_step == 23


def test_tabular_mlp(store):
    from sklearn.datasets import load_iris

    from core.data.splits import stratified_split

    iris = load_iris(as_frame=True)
    y = iris.target.to_numpy()
    ds = Dataset("iris", "tabular", iris.data, y, list(iris.target_names), stratified_split(y, val=0.2, test=0.2))
    vid = store.save_dataset(ds, source="upload:iris.csv")
    run_id, status = _run(store, version_id=vid, model="auto", epochs=30, batch_size=16, lr=1e-2)
    assert status == "finished"
    assert _final(store, run_id)["accuracy"] >= 0.8
    assert load_checkpoint(run_id)["arch"] == "mlp"


@needs_asset("minilm")
def test_text_linear_probe_on_cached_features(store, tmp_path, home):
    from core.data.splits import stratified_split

    texts = [
        "great film, loved it",
        "terrible, a waste of time",
        "wonderful and moving",
        "awful acting, boring",
        "brilliant work",
        "dull and bad",
        "superb cast",
        "horrible plot",
    ] * 8
    labels = np.arange(len(texts)) % 2 ^ 1  # 1 = positive
    split = stratified_split(labels, val=0.25, test=0.25, seed=0)
    ds = Dataset("reviews", "text", np.array(texts, dtype=object), labels, ["negative", "positive"], split)
    vid = store.save_dataset(ds, source="upload:reviews.csv")
    folder = tiny_bert_dir(tmp_path / "bert")
    run_id, status = _run(store, version_id=vid, model=str(folder), finetune="linear_probe", epochs=5, batch_size=8)
    assert status == "finished", store.run(run_id).message
    assert load_checkpoint(run_id)["arch"] == "linear"
    assert len(list((home / "cache" / "features").glob("*.npy"))) == 1  # core.embed cached them
    again, status = _run(store, version_id=vid, model=str(folder), finetune="linear_probe", epochs=5, batch_size=8)
    assert status == "finished"
    np.testing.assert_equal(_final(store, again), _final(store, run_id))


def test_stop_before_start_and_bad_config_fail_cleanly(store):
    vid = _digits(store)
    cfg = RunConfig(version_id=vid, model="small_cnn")
    queued = store.create_run(vid, cfg.to_dict())
    assert store.request_stop(queued) == "stopped"
    assert train_run(store, queued) == "stopped"
    bad = store.create_run(vid, {**cfg.to_dict(), "model": "minilm"})
    assert train_run(store, bad) == "failed"
    assert "reads text, but this dataset is image" in store.run(bad).message


def test_lr_schedule_warms_up_then_decays_to_zero():
    f = [lr_factor(s, 100, 10) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(f[10:])) and f[99] < 0.01
    assert lr_factor(100, 100, 10) == pytest.approx(0.0)


def test_length_bucketed_batches_cover_every_item_once_and_pad_little():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 128, 1000)
    order = Shuffle().epoch(np.arange(1000), 0, np.random.default_rng(1))  # the default sampler's draw
    assert sorted(order.tolist()) == list(range(1000))
    batches = make_batches(1000, 32, np.random.default_rng(1), lengths[order])
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))  # every draw position once
    padded = sum(len(b) * lengths[order[b]].max() for b in batches)
    shuffled = sum(len(b) * lengths[order[b]].max() for b in make_batches(1000, 32, np.random.default_rng(1)))
    assert padded < 0.7 * shuffled
    again = make_batches(1000, 32, np.random.default_rng(1), lengths[order])
    assert len(again) == len(batches) and all((a == b).all() for a, b in zip(batches, again))


def test_temperature_fit_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 5)) * 2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in p])  # labels drawn from softmax(z)
    assert fit_temperature(z * 3.0, y) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(z, np.full(len(z), -1)) == 1.0  # no known rows: identity


def _toy_data(y_model: np.ndarray, labels: np.ndarray, classes: list[int], absent: list[int]) -> RunData:
    n = len(labels)
    return RunData(
        rows=np.arange(n),
        train=np.arange(0),
        val=np.arange(0),
        test=np.arange(n),
        y=y_model,
        labels=labels,
        classes=np.array(classes),
        absent=np.array(absent, dtype=np.int64),
        train_counts=np.array([50, 50]),
    )


def test_report_matches_core_metrics_on_raw_logits():
    from core import metrics as M

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 2)) * 3 + rng.normal(size=(40, 1)) * 10  # big per-row offsets: energy must see them
    labels = rng.choice([0, 2, 1], size=40)  # dataset classes 0 and 2 trained, 1 absent
    y = np.where(labels == 0, 0, np.where(labels == 2, 1, -1))
    data = _toy_data(y, labels, [0, 2], [1])
    rep = report(logits, np.arange(40), data, tau=0.9, temperature=2.0)
    p = np.exp(logits / 2.0 - (logits / 2.0).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    want = M.summary(p, y, tau=0.9, logits=logits / 2.0, train_counts=[50, 50])
    np.testing.assert_equal(rep.summary, want)
    assert rep.unknown_confusion.sum() == (labels == 1).sum() and rep.confusion.sum() == (labels != 1).sum()
    assert rep.temperature == 2.0


@needs_asset("minilm")
def test_length_sorted_prediction_comes_back_in_item_order(tmp_path):
    import contextlib

    from core.models.build import build
    from core.models.preprocess import tokenise

    folder = tiny_bert_dir(tmp_path / "bert")
    built = build(RunConfig(version_id=1, model=str(folder)), modality="text", n_classes=3)
    texts = np.array(["a much longer text than the others, with many words in it", "short", "medium length text here", "hi"], dtype=object)
    inputs = Inputs("tokens", torch.device("cpu"), tokens=tokenise(texts, built.tokenizer, 64))
    idx = np.array([0, 1, 2, 3])
    together = predict_logits(built, inputs, idx, n_classes=3, batch_size=4, autocast=contextlib.nullcontext)
    one_by_one = np.concatenate(
        [predict_logits(built, inputs, idx[i : i + 1], n_classes=3, batch_size=1, autocast=contextlib.nullcontext) for i in range(4)]
    )
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_metrics_per_slice_are_stored_and_match_the_predictions(tmp_path):
    """Each low-cardinality meta column is scored per value at every evaluation."""
    from sklearn.datasets import load_digits

    from core.data.splits import stratified_split
    from core.store import Store

    store = Store(tmp_path / "slices")
    X, y = load_digits(return_X_y=True)
    meta = pd.DataFrame({"source": np.where(np.arange(len(y)) % 3, "scanner", "phone"), "id": np.arange(len(y)).astype(str)})
    ds = Dataset("d", "image", (X.reshape(-1, 8, 8) * 15).astype(np.uint8), y, [str(i) for i in range(10)], stratified_split(y), meta)
    vid = store.save_dataset(ds, source="upload:d.zip")
    run_id = store.create_run(vid, RunConfig(version_id=vid, model="small_cnn", epochs=1, temperature_scaling=False).to_dict())
    assert train_run(store, run_id) == "finished"
    m = store.metrics(run_id)
    test = m[(m["split"] == "test") & m["name"].str.startswith("slice/")]
    last = test[test["step"] == test["step"].max()].set_index("name")["value"]
    assert not any("slice/id=" in n for n in last.index)  # 1,797 distinct values: not a slice
    n_phone, n_scanner = last["slice/source=phone/n"], last["slice/source=scanner/n"]
    test_rows = np.flatnonzero(ds.split == 2)
    assert n_phone + n_scanner == len(test_rows) and n_phone == (meta["source"].to_numpy()[test_rows] == "phone").sum()
    preds = store.predictions(run_id, split="test")
    phone = preds[meta["source"].to_numpy()[preds["item"]] == "phone"]
    assert last["slice/source=phone/accuracy"] == pytest.approx((phone["pred"] == phone["label"]).mean())
