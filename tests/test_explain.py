"""core.explain: attributions on cases with known answers, the data-centric "why", deletion curves,
the per-run cache and its background job — and on real runs (image, table, text)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from core.data import Dataset
from core.errors import DataError
from core.explain import cache
from core.explain.attribute import Explainer, ablation, gradients, integrated_gradients, occlusion
from core.explain.faithfulness import FRACTIONS, area, deletion_curve, order_by, removal_counts
from core.explain.kinds import without_words
from core.explain.neighbours import nearest_train, why_words
from core.store import RunFiles
from core.train.apply import load_run_model
from tests.conftest import needs_asset
from tests.test_train import _digits, _run

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


def _linear(w: np.ndarray, b: np.ndarray | None = None) -> nn.Linear:
    lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
        if b is not None:
            lin.bias.copy_(torch.from_numpy(b))
    return lin.eval()


# ---------------------------------------------------------------- known answers


def test_integrated_gradients_of_a_linear_model_is_weight_times_input():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(3, 6)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    lin = _linear(w, b)
    x = torch.from_numpy(rng.normal(size=(1, 6)).astype(np.float32))
    for target in range(3):
        attr, delta = integrated_gradients(lin, x, torch.zeros_like(x), target)
        np.testing.assert_allclose(attr, w[target] * x[0].numpy(), rtol=1e-5, atol=1e-6)
        assert delta < 1e-5  # completeness: the sum is logit(x) − logit(0)
    base = torch.ones_like(x)  # from another baseline: weight × (input − baseline)
    attr, _ = integrated_gradients(lin, x, base, 1)
    np.testing.assert_allclose(attr, w[1] * (x[0].numpy() - 1.0), rtol=1e-5, atol=1e-6)


def test_plain_gradients_of_a_linear_model_are_its_weights_magnitudes():
    w = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], np.float32)
    x = torch.tensor([[0.3, 0.1, -4.0]])
    np.testing.assert_allclose(gradients(_linear(w), x, 0), np.abs(w[0]))
    np.testing.assert_allclose(gradients(_linear(w), x, 1), np.abs(w[1]))


def test_feature_ablation_gives_each_group_its_own_contribution():
    w = np.array([[1.0, 2.0, 3.0, -1.0]], np.float32)  # one output: a weighted sum
    x = torch.tensor([[1.0, 1.0, 2.0, 5.0]])
    base = torch.zeros_like(x)
    mask = torch.tensor([[0, 0, 1, 2]])  # the first two columns are one group (a one-hot column)
    got = ablation(_linear(w), x, base, mask, 0)
    np.testing.assert_allclose(got, [3.0, 3.0, 6.0, -5.0])  # each group's removal takes its term away


def test_occlusion_finds_the_only_patch_the_model_reads():
    class TopLeft(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :, :4, :4].mean(dim=(1, 2, 3))[:, None]

    x = torch.ones(1, 1, 12, 12)
    got = occlusion(TopLeft(), x, 0, window=2, stride=2)[0]
    assert got[:4, :4].min() > 0 and np.allclose(got[4:, :], 0) and np.allclose(got[:, 4:], 0)


def test_deletion_curves_and_their_area():
    assert removal_counts(10).tolist()[:3] == [0, 0, 1] and removal_counts(10)[-1] == 10
    assert area(np.ones_like(FRACTIONS)) == pytest.approx(1.0)
    assert area(1.0 - FRACTIONS) == pytest.approx(0.5)
    assert order_by(np.array([0.1, 3.0, -2.0, 3.0])).tolist() == [1, 3, 0, 2]  # largest first, ties by position

    # a "model" that is the share of parts 0..4 still present: removing them first falls fastest
    def score(removed: list[np.ndarray]) -> np.ndarray:
        return np.array([1.0 - np.isin(np.arange(5), r).sum() / 5 for r in removed])

    good = area(deletion_curve(score, np.arange(20)))
    bad = area(deletion_curve(score, np.arange(20)[::-1]))
    assert good < 0.2 < 0.7 < bad


def test_words_are_removed_by_their_spans():
    text = "the coat, it is warm"
    spans = [(0, 3), (4, 8), (8, 9), (10, 12), (13, 15), (16, 20)]
    assert without_words(text, spans, np.array([1, 5])) == "the , it is"
    assert without_words(text, spans, np.array([], dtype=np.int64)) == text


# ---------------------------------------------------------------- neighbours


def test_the_nearest_train_items_with_suspects_and_a_thin_class():
    rng = np.random.default_rng(1)
    n = 60
    labels = np.r_[np.zeros(40, int), np.ones(15, int), np.full(5, 2)]
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    split = np.zeros(n, np.int8)
    split[-1] = 2  # the item asked about is a test item of class 2 (thin: 4 train items)
    ds = Dataset("d", "tabular", pd.DataFrame({"a": np.arange(n)}), labels, ["coat", "shirt", "bag"], split)
    item = n - 1
    near = [3, 7, 11, 45]  # made nearest: three coats and one shirt
    emb[near] = emb[item] + 0.01 * rng.normal(size=(4, 8))
    suspect = np.zeros(n, bool)
    suspect[[3, 7]] = True
    nb = nearest_train(emb, ds, item, k=4, suspect=suspect)
    assert sorted(nb.rows.tolist()) == near and item not in nb.rows
    assert np.all(np.diff(nb.similarity) <= 0) and nb.similarity[0] > 0.99
    assert nb.count(0) == 3 and nb.suspects_among(0) == 2 and nb.thin(2) and not nb.thin(0)
    words = why_words(nb, ds, predicted=0, given=2)
    assert "3 of its 4 nearest train items are labelled coat, 2 of them suspected" in words
    assert "bag is a thin class (4 train items)" in words
    assert "Run Diagnose" in why_words(nearest_train(emb, ds, item, k=4), ds, predicted=0, given=0)
    with pytest.raises(ValueError, match="differ in length"):
        nearest_train(emb[:-1], ds, item)


# ---------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from core.store import Store

    home = tmp_path_factory.mktemp("explain_home")
    store = Store(home)
    run_id, status = _run(store, version_id=_digits(store), epochs=4)
    assert status == "finished", store.run(run_id).message
    return store, run_id


def test_integrated_gradients_on_a_digits_run_are_complete_and_beat_random_deletion(digits_run):
    store, run_id = digits_run
    model = load_run_model(store, run_id, device="cpu")
    ex = Explainer(model)
    test = np.flatnonzero(model.ds.split == 2)[:12]
    ig, rnd, grad = [], [], []
    rng = np.random.default_rng(0)
    for i in test.tolist():
        pred = int(model.classes[int(np.argmax(ex.probabilities(i)))])
        a = ex.attribute(i, pred, "integrated_gradients")
        assert a.values.shape == np.shape(model.ds.items)[1:3] and a.delta is not None and a.delta < 0.05 * max(1.0, abs(a.values.sum()))
        ig.append(area(ex.deletion(a, order_by(a.values))))
        rnd.append(area(ex.deletion(a, rng.permutation(a.values.size))))
        g = ex.attribute(i, pred, "gradients")
        grad.append(area(ex.deletion(g, order_by(g.values))))
    assert np.mean(ig) < 0.7 * np.mean(rnd) and np.mean(ig) < np.mean(grad)
    occ = ex.attribute(int(test[0]), int(model.ds.labels[test[0]]), "occlusion")
    assert occ.values.shape == np.shape(model.ds.items)[1:3] and occ.delta is None
    with pytest.raises(DataError, match="does not explain image"):
        ex.attribute(int(test[0]), 0, "feature_ablation")


def test_a_randomised_model_gets_different_attributions(digits_run):
    """Adebayo et al. (2018): an attribution that survives re-initialising the model's weights
    explains the input, not the model."""
    from scipy.stats import spearmanr

    store, run_id = digits_run
    trained = Explainer(load_run_model(store, run_id, device="cpu"))
    randomised_model = load_run_model(store, run_id, device="cpu")
    torch.manual_seed(0)
    for m in randomised_model.built.net.modules():
        if hasattr(m, "reset_parameters") and m is not randomised_model.built.net:
            m.reset_parameters()
    randomised = Explainer(randomised_model)
    test = np.flatnonzero(trained.model.ds.split == 2)[:8].tolist()
    same, other = [], []
    for i in test:
        cls = int(trained.model.ds.labels[i])
        a = trained.attribute(i, cls, "integrated_gradients").values.ravel()
        again = trained.attribute(i, cls, "integrated_gradients").values.ravel()
        r = randomised.attribute(i, cls, "integrated_gradients").values.ravel()
        same.append(spearmanr(a, again).statistic)
        other.append(spearmanr(a, r).statistic)
    assert np.min(same) > 0.999 and np.mean(other) < 0.5


def test_attributions_are_cached_per_run_and_filled_by_the_background_job(digits_run):
    store, run_id = digits_run
    model = load_run_model(store, run_id, device="cpu")
    files = RunFiles(run_id, home=store.home)
    item = int(np.flatnonzero(model.ds.split == 2)[0])
    cls = int(model.ds.labels[item])
    assert cache.load(files, model.step, item, cls, "occlusion") is None
    job = cache.ExplainJob(store.home, run_id, [(item, cls), (item + 1, int(model.ds.labels[item + 1]))])
    job.start()
    job.join(timeout=240)
    assert not job.is_alive() and job.error is None
    done, total, stage = job.status()
    assert done == total == 7 and stage == "done"  # two items × three image methods, then the embedding
    got = cache.load(files, model.step, item, cls, "occlusion")
    fresh = Explainer(model).attribute(item, cls, "occlusion")
    np.testing.assert_allclose(got.values, fresh.values, atol=1e-6)
    assert got.prob == pytest.approx(fresh.prob, abs=1e-6)
    broken = cache.ExplainJob(store.home, 10_000, [(0, 0)])
    broken.start()
    broken.join(timeout=60)
    assert broken.status()[2] == "failed" and broken.error


def test_a_table_run_is_explained_per_column_and_a_missing_class_is_refused(store, home):
    from sklearn.datasets import load_iris

    from core.data.splits import stratified_split

    iris = load_iris(as_frame=True)
    y = iris.target.to_numpy()
    df = iris.data.assign(kind=np.where(y == 0, "a", "b"))
    split = stratified_split(y, val=0.2, test=0.2)
    split[(y == 2) & (split == 0)] = 2  # class 2 never trained on
    vid = store.save_dataset(Dataset("iris", "tabular", df, y, list(iris.target_names), split), source="upload:iris.csv")
    run_id, status = _run(store, version_id=vid, model="auto", epochs=10, batch_size=16, lr=1e-2)
    assert status == "finished"
    ex = Explainer(load_run_model(store, run_id, device="cpu"))
    item = int(np.flatnonzero(split == 2)[0])
    columns = [*iris.data.columns, "kind"]
    for method in ("feature_ablation", "integrated_gradients", "gradients"):
        a = ex.attribute(item, 0, method)
        assert a.parts == columns and a.values.shape == (5,) and np.isfinite(a.values).all()
    full = ex.attribute(item, 1, "integrated_gradients")
    assert full.delta is not None and full.delta < 1e-2
    with pytest.raises(DataError, match="never learnt class 'virginica'"):
        ex.attribute(item, 2, "integrated_gradients")


@needs_asset("minilm")
def test_a_text_run_is_explained_per_word(store, home, tmp_path):
    from core.data.splits import stratified_split
    from tests.test_models import tiny_bert_dir

    texts = ["great film, loved it", "terrible, a waste of time", "wonderful and moving", "awful acting, boring"] * 10
    labels = np.arange(len(texts)) % 2 ^ 1
    split = stratified_split(labels, val=0.25, test=0.25, seed=0)
    vid = store.save_dataset(
        Dataset("reviews", "text", np.array(texts, dtype=object), labels, ["neg", "pos"], split), source="upload:r.csv"
    )
    folder = tiny_bert_dir(tmp_path / "bert")
    run_id, status = _run(store, version_id=vid, model=str(folder), epochs=2, batch_size=8)
    assert status == "finished", store.run(run_id).message
    model = load_run_model(store, run_id, device="cpu")
    ex = Explainer(model)
    item = int(np.flatnonzero(split == 2)[0])
    a = ex.attribute(item, 1, "integrated_gradients")
    assert " ".join(a.parts).replace(" ,", ",") == texts[item]  # sub-tokens merged back to the text's words
    assert len(a.values) == len(a.parts) == len(a.spans) and a.delta is not None and a.delta < 0.05
    g = ex.attribute(item, 1, "gradients")
    assert (g.values >= 0).all() and g.parts == a.parts
    curve = ex.deletion(a, order_by(a.values))
    assert curve[0] == pytest.approx(a.prob, abs=1e-5) and curve.shape == FRACTIONS.shape
    probe_id, status = _run(store, version_id=vid, model=str(folder), finetune="linear_probe", epochs=2, batch_size=8)
    with pytest.raises(DataError, match="linear probe"):
        Explainer(load_run_model(store, probe_id, device="cpu"))


def test_the_report_shows_the_explanations_kept_for_a_runs_gallery(digits_run):
    from core.compare.one_run import confident_errors, result_predictions
    from core.metrics.results import RunResults
    from core.report.html import build_report

    store, run_id = digits_run
    res = RunResults(store, run_id)
    wrong = confident_errors(result_predictions(res))
    assert len(wrong) >= 2
    files = RunFiles(run_id, home=store.home)
    for p in files.folder.joinpath("explain").glob("*.npz"):
        p.unlink()  # what other tests kept
    assert "id='explanations'" not in build_report(store, [run_id])  # nothing kept: no section
    ex = Explainer(load_run_model(store, run_id, device="cpu"))
    item, pred = int(wrong["item"].iloc[0]), int(wrong["pred"].iloc[0])
    cache.cached_or_computed(ex, files, res.result_step, item, pred, "occlusion")
    assert cache.stored(files, res.result_step) == {(item, pred, "occlusion")}
    page = build_report(store, [run_id])
    assert "id='explanations'" in page and "Why it answered" in page and "Occlusion" in page
    assert f"answered {store.load_dataset(res.row.version_id).class_names[pred]}" in page
