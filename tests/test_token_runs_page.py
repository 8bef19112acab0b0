"""AppTests of the Runs and Compare pages on token-classification (NER) runs.

Two kinds of runs:

- ``written_token_runs``: two runs on a CoNLL-2003 slice whose train split lacks MISC, their
  evaluations written by the real writer (``core.tokens.train.TokenMetricWriter``, through a
  ``StoreSink``) from decoded predictions of a seeded simulated tagger — a weak reference and a
  stronger run that finds many more entities — so every panel has content, in seconds;
- ``trained_token_runs`` (slow): two tiny MiniLM runs trained through ``core.train.worker.train_run``
  on a 120-sentence slice with different seeds.
"""

from __future__ import annotations

import functools
import json
from types import SimpleNamespace

import numpy as np
import pytest

from core.data import assets
from core.data.dataset import Dataset
from core.metrics.results import RunResults
from core.store import RunStatus, Store
from core.train.config import RunConfig
from tests.test_train_pages import open_page

needs_conll = pytest.mark.skipif(not assets.is_ready("conll2003"), reason="the CoNLL-2003 asset is not fetched")
pytestmark = [pytest.mark.timeout(600), needs_conll]


@functools.cache
def _conll():
    from core.data.demos import load_conll2003

    return load_conll2003().dataset


def conll_slice(n_train: int = 80, n_val: int = 40, n_test: int = 60, *, without: str | None = "MISC", seed: int = 0) -> Dataset:
    """A seeded slice of CoNLL-2003 (train, val, test as given); ``without``: that type's train
    mentions tagged O, so the train split lacks it while val and test keep it."""
    from core.tokens.data import token_dataset

    ds = _conll()
    rng = np.random.default_rng(seed)
    keep = np.sort(
        np.concatenate([rng.choice(np.flatnonzero(ds.split == s), n, replace=False) for s, n in enumerate((n_train, n_val, n_test))])
    )
    assert ds.tags is not None
    tags = [[("O" if ds.split[r] == 0 and t.endswith(f"-{without}") else str(t)) for t in ds.tags[r]] for r in keep]
    return token_dataset("CoNLL-2003 slice", [list(ds.items[r]) for r in keep], tags, ds.split[keep])


def _simulated_logits(truth: list[list[str]], names: list[str], right: float, rng: np.random.Generator) -> list[np.ndarray]:
    """A tagger's logits: each word's true tag (a tag the model lacks: O) with chance ``right``,
    else another tag; confident either way (softmax top 0.55–0.999)."""
    index = {t: i for i, t in enumerate(names)}
    out = []
    for seq in truth:
        z = np.zeros((len(seq), len(names)), np.float32)
        for i, tag in enumerate(seq):
            want = index.get(tag, 0)
            pick = want if rng.random() < right else int(rng.integers(0, len(names)))
            top = rng.uniform(0.55, 0.999)
            p = np.full(len(names), (1 - top) / (len(names) - 1))
            p[pick] = top
            z[i] = np.log(p)
        out.append(z)
    return out


def write_token_run(store: Store, vid: int, ds: Dataset, *, name: str, rights: tuple[float, ...], seed: int, tau: float = 0.9) -> int:
    """A finished token run whose evaluations (one per entry of ``rights``, the simulated tagger's
    word accuracy) and temperature-scaled result are written by ``TokenMetricWriter``."""
    from core.tokens.spans import mention_counts
    from core.tokens.train import TokenMetricWriter, dropped_types, fit_token_temperature, model_tags, report_tokens
    from core.train.events import EvalResult
    from core.train.run_data import split_data
    from core.train.sink import StoreSink

    cfg = RunConfig(version_id=vid, model="minilm", epochs=2, batch_size=16, seed=seed, tau=tau, early_stopping_metric="macro_f1")
    run = store.create_run(vid, cfg.to_dict(), name=name)
    store.set_run_status(run, RunStatus.RUNNING)
    sink = StoreSink(store, run)
    data = split_data(ds, cfg)
    names = model_tags(ds, data.rows[data.train])
    assert ds.tags is not None
    truth = {split: [list(ds.tags[r]) for r in data.rows[idx]] for split, idx in (("val", data.val), ("test", data.test))}
    inputs = SimpleNamespace(tag_names=names, tags=[list(ds.tags[r]) for r in data.rows])
    job = SimpleNamespace(inputs=inputs, data=data, cfg=cfg)
    dropped = dropped_types(job)  # type: ignore[arg-type]
    mentions = mention_counts(inputs.tags[i] for i in data.train)
    writer = TokenMetricWriter(sink, job, list(ds.class_names), dict(mentions))  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    best = None
    for k, right in enumerate(rights):
        step = 10 * (k + 1)
        sink.add_metrics(step, "train", {"loss": 1.5 / (k + 1)}, epoch=k + 1.0)
        logits = {split: _simulated_logits(truth[split], names, right, rng) for split in truth}
        reports = {split: report_tokens(logits[split], truth[split], names, tau=tau, dropped=dropped) for split in truth}
        metric = reports["val"].summary["entity_f1_macro"]
        is_best = best is None or metric > best[1]
        result = EvalResult(step, k + 1.0, "entity_f1_macro", metric, is_best, reports, logits)  # type: ignore[arg-type]
        writer.write_eval(result)
        if is_best:
            best = (step, metric, logits)
    assert best is not None
    step, metric, logits = best
    t = fit_token_temperature(logits["val"], truth["val"], names)
    scaled = {split: report_tokens(logits[split], truth[split], names, tau=tau, dropped=dropped, temperature=t) for split in truth}
    for rep in scaled.values():
        rep.temperature = t
    writer.write_eval(EvalResult(step, step / 10, "entity_f1_macro", metric, False, scaled, {}), variant="ts")  # type: ignore[arg-type]
    sink.files.write_json("config.json", {**cfg.to_dict(), "early_stopping_metric": "entity_f1_macro"})
    sink.files.write_json("summary.json", {"status": "finished", "best_step": step, "metric": "entity_f1_macro", "temperature": t})
    sink.finish(RunStatus.FINISHED, f"done: best val entity_f1_macro {metric:.4f} at step {step}")
    return run


@pytest.fixture
def written_token_runs(home) -> tuple[Store, list[int]]:
    """A weak reference run and a stronger one on the same CoNLL-2003 slice (train without MISC)."""
    store = Store(home)
    ds = conll_slice()
    vid = store.save_dataset(ds, source="demo:conll2003")
    weak = write_token_run(store, vid, ds, name="weak", rights=(0.6, 0.7), seed=1)
    strong = write_token_run(store, vid, ds, name="strong", rights=(0.8, 0.95), seed=2)
    return store, [weak, strong]


def _html(at) -> str:
    return " ".join(h.proto.body for h in at.get("html"))


def test_runs_page_shows_a_token_runs_entity_panels_and_gallery(written_token_runs):
    store, (weak, strong) = written_token_runs
    store.add_metrics(strong, 20, "test", {"o_offset": 1.5})  # as a run with fewer invented entities writes it
    at = open_page("app_pages/runs.py")
    assert at.selectbox(key="runs_pick").value == strong  # the newest
    assert any("the logit of O was raised by **1.50**" in c.value for c in at.caption)
    res = RunResults(store, strong)
    assert res.is_tokens and res.stopping_metric == "entity_f1_macro" and res.result_step == 20
    text = " ".join(m.value for m in at.markdown)
    assert "Test scores at step 20, the best val entity macro-F1" in text and "per-type scores, type confusion" in text
    m = {x.label: x for x in at.metric}
    assert {"Entity micro-F1", "Entity macro-F1", "Spurious @τ", "Wrong type @τ", "Token ECE"} <= set(m)
    assert "confident spurious-entity rate @τ" in m["Spurious @τ"].proto.help.lower()
    assert m["Entity micro-F1"].value == f"{res.at('entity_f1_micro', 20):.3f}"
    assert "after TS" in m["Token ECE"].proto.delta  # the change after temperature scaling
    assert "Forced-known @τ" in m  # the train split lacks MISC
    assert any("no MISC mentions" in w.value and "forced-known type rate" in w.value for w in at.warning)
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    for title in ("Entity micro- and macro-F1", "Hallucinated entities (test)", "Token calibration error", "per type", "Type confusion",
                  "Token reliability"):  # fmt: skip
        assert any(title in s for s in specs), title
    assert any("tail type" in s or "medium type" in s for s in specs)  # F1 bars coloured by the type's group
    assert any("head: more than 100 train mentions" in c.value for c in at.caption)
    tables = [df.value for df in at.dataframe]
    assert any("token ECE" in t.index for t in tables)  # before / after temperature scaling
    gallery = _html(at)
    assert "spurious</b>" in gallery or "wrong type</b>" in gallery
    assert "border:1px dashed" in gallery and "border:1px solid" in gallery  # predicted and true entities, two styles
    assert any(c.value.startswith("At step 20 (epoch 2.00):") and "predicted entities" in c.value for c in at.caption)
    assert not any("Recall per class" in s for s in specs)  # no classification panels
    # the reference run, picked
    at.selectbox(key="runs_pick").set_value(weak)
    at.run()
    assert not at.exception, at.exception
    assert not any("the logit of O was raised" in c.value for c in at.caption)  # a run without the offset says nothing of it


def test_a_training_token_run_is_drawn_live_with_its_gallery_outside_the_fragments(written_token_runs, monkeypatch):
    from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

    import ui.run_tokens

    store, (_, strong) = written_token_runs
    store.set_run_status(strong, RunStatus.RUNNING)
    store.heartbeat(strong)
    drawn_in: list[str | None] = []
    gallery = ui.run_tokens.gallery

    def recording(*args, **kwargs):
        drawn_in.append(ThreadState.get().fragment_id)
        return gallery(*args, **kwargs)

    monkeypatch.setattr(ui.run_tokens, "gallery", recording)
    at = open_page("app_pages/runs.py")
    if not store.run(strong).status.active:  # pragma: no cover - the app's runner would have to give up on it first
        pytest.skip(f"the run was not live when the page drew it: {store.run(strong).status}")
    assert drawn_in and all(f is None for f in drawn_in)  # the page run drew the gallery, no fragment
    assert "Entity micro-F1" in {x.label for x in at.metric} and "spurious</b>" in _html(at)
    assert at.session_state[f"gallery_shown_{strong}"] == (20, True)


def test_compare_page_shows_entity_changes_with_intervals(written_token_runs):
    _, ids = written_token_runs
    at = open_page("app_pages/compare.py")
    assert at.multiselect(key="cmp_runs").value == ids
    frames = [df.value for df in at.dataframe]
    table = frames[0]
    assert table.columns[0] == "Δ #2 · strong"
    f1 = table.loc["entity micro-F1", "Δ #2 · strong"]
    low = float(f1.split("[")[1].split(",")[0])
    assert low > 0  # the stronger run fixes many entities: the interval excludes zero
    assert {"confident spurious-entity rate @τ", "type hallucination rate @τ", "missed-entity rate", "token ECE"} <= set(table.index)
    per_type = frames[1]
    assert {"F1 of PER", "F1 of LOC", "F1 of ORG"} <= set(per_type.index) and "[" in per_type.loc["F1 of PER", "Δ #2 · strong"]
    text = " ".join(m.value for m in at.markdown)
    assert "#2 · strong against #1 · weak: better on entity micro-F1" in text
    m = {x.label: x.value for x in at.metric}
    assert int(m["Entities fixed"].replace(",", "")) > int(m["Entities introduced"].replace(",", ""))
    html = _html(at)
    assert "fixed" in html and "#1" in html and "#2" in html and "border:1px dashed" in html
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("F1 per type" in s for s in specs) and any("val entity macro-F1" in s for s in specs)
    at.radio(key="cmp_tok_outcome").set_value("hallucination added")
    at.run()
    assert not at.exception, at.exception
    at.button(key="export_compare_prepare").click()
    at.run()
    assert not at.exception, at.exception
    assert "Report (HTML)" in {b.proto.label for b in at.get("download_button")}


def test_classification_and_token_runs_are_not_mixed_on_compare(written_token_runs):
    from tests.test_compare import _ds

    store, ids = written_token_runs
    vid = store.save_dataset(_ds(), source="upload:toy")
    other = store.create_run(vid, {"model": "small_cnn"}, name="images")
    store.add_metrics(other, 10, "test", {"accuracy": 0.5})
    store.set_run_status(other, "finished")
    at = open_page("app_pages/compare.py")
    at.multiselect(key="cmp_runs").set_value([ids[0], other])
    at.run()
    assert not at.exception, at.exception
    assert any("token-classification" in w.value for w in at.warning)


@pytest.fixture(scope="module")
def trained_token_runs(tmp_path_factory) -> tuple[str, list[int]]:
    """Two tiny MiniLM runs (seeds 0 and 1) trained by the real worker on 120 CoNLL-2003 sentences."""
    from core.train.worker import train_run

    home = tmp_path_factory.mktemp("token_home")
    store = Store(home)
    ds = conll_slice(60, 30, 30, without=None)
    vid = store.save_dataset(ds, source="demo:conll2003")
    ids = []
    for seed in (0, 1):
        cfg = RunConfig(version_id=vid, model="minilm", epochs=2, batch_size=16, lr=3e-4, seed=seed, device="cpu")
        run = store.create_run(vid, cfg.to_dict(), name=f"seed {seed}")
        assert train_run(store, run) == "finished", store.run(run).message
        ids.append(run)
    return str(home), ids


@pytest.mark.slow
@pytest.mark.skipif(not assets.is_ready("minilm"), reason="the MiniLM asset is not fetched")
def test_runs_and_compare_pages_on_two_trained_token_runs(trained_token_runs, monkeypatch):
    home, ids = trained_token_runs
    monkeypatch.setenv("GAPSCOPE_HOME", home)
    at = open_page("app_pages/runs.py")
    labels = {x.label for x in at.metric}
    assert {"Entity micro-F1", "Token ECE"} <= labels and "Accuracy" not in labels
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Type confusion" in s for s in specs) and any("per type" in s for s in specs)
    at.switch_page("app_pages/compare.py")
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert "entity micro-F1" in table.index and "token ECE" in table.index
    summary = json.loads((Store(home).home / "runs" / str(ids[0]) / "summary.json").read_text())
    assert summary["best_step"] == RunResults(Store(home), ids[0]).result_step
