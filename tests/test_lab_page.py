"""The Lab page: knobs and preview, a saved corpus, a run started in the background and its results."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from core.lab.stored import lab_versions
from core.store import Store
from core.store.status import RunStatus
from tests.test_train_pages import open_page, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _values(v) -> list:
    """A plotly array as JSON gives it: a list, or typed bytes in base64."""
    return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist() if isinstance(v, dict) else list(v)


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_the_lab_page_previews_saves_trains_and_shows_results_by_exposure(home):
    store = Store(home)
    at = open_page("app_pages/lab.py")
    assert any("Save a corpus above first" in i.value for i in at.info)
    at.number_input(key="lb_people").set_value(40).run()
    at.text_input(key="lb_buckets").set_value("1, 8").run()
    assert not at.exception, at.exception
    # 40 people, 8 held out; the 32 others half once, half 8 times: 16 of the 32 facts per attribute are seen once
    assert _metric(at, "Monofact rate") == "50.0%" and _metric(at, "Biographies") == f"{16 * 1 + 16 * 8:,}"
    assert _metric(at, "Held-out people") == "8"
    at.text_input(key="lb_buckets").set_value("one, eight").run()
    assert any("whole numbers separated by commas" in e.value for e in at.error)
    at.text_input(key="lb_buckets").set_value("1, 8").run()
    at.button(key="lb_save").click().run()
    assert not at.exception, at.exception
    [version] = lab_versions(store)
    assert version.params["lab_corpus"]["n_people"] == 40 and at.selectbox(key="lb_version").value == version.id
    # settings survive leaving the page
    at.number_input(key="lb_epochs").set_value(4).run()
    at.number_input(key="lb_every").set_value(2).run()
    at.selectbox(key="lb_width").set_value(32).run()
    at.number_input(key="lb_layers").set_value(1).run()
    at.switch_page("app_pages/data.py").run()
    assert not at.exception, at.exception  # the corpus's questions are a text dataset like any other
    at.switch_page("app_pages/lab.py").run()
    assert at.number_input(key="lb_epochs").value == 4 and at.number_input(key="lb_people").value == 40
    at.toggle(key="lb_aug").set_value(True).run()
    start = at.button(key="lb_start")
    assert "paraphrase augmentation" in start.proto.label
    start.click().run()
    assert not at.exception, at.exception
    [run] = store.runs()
    assert run.config["model"] == "lab_gpt2" and run.config["lab"]["paraphrase_aug"] is True
    assert run.config["lab"]["corpus"]["n_people"] == 40
    assert wait_for(lambda: store.run(run.id).status in (RunStatus.FINISHED, RunStatus.FAILED), timeout=400)
    assert store.run(run.id).status == RunStatus.FINISHED, store.run(run.id).message
    at.run()
    assert not at.exception, at.exception
    frames = [d.value for d in at.dataframe]
    table = next(f for f in frames if "seen (×)" in f.columns)
    assert list(table["seen (×)"]) == ["0", "1", "8"] and list(table["questions"]) == ["40", "80", "80"]
    assert list(table["invented"])[1:] == ["—", "—"]
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [f["layout"]["title"]["text"] for f in figures]
    assert "Accuracy and hallucination against how often the fact was seen" in titles
    curves = next(f for f in figures if f["layout"]["title"]["text"].endswith("per exposure over training"))
    assert [t["name"] for t in curves["data"]] == ["seen 0×", "seen 1×", "seen 8×"]
    assert all(len(_values(t["x"])) == 2 for t in curves["data"])  # evaluated at epochs 2 and 4
    at.radio(key="lb_curve").set_value("hallucination_rate").run()
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any(f["layout"]["title"]["text"] == "hallucination rate @τ per exposure over training" for f in figures), [
        f["layout"]["title"]["text"] for f in figures
    ]
    assert any("Kalai & Vempala's lower bound" in m.value for m in at.markdown)
    assert any("For people the corpus never mentions it invents an answer" in m.value for m in at.markdown)


def test_lab_runs_show_on_the_runs_and_compare_pages(home):
    from core.lab.corpus import CorpusSpec
    from core.lab.settings import LAB_MODEL, LabSettings, lab_block
    from core.lab.stored import save_corpus
    from core.train.config import RunConfig
    from core.train.worker import train_run

    store = Store(home)
    spec = CorpusSpec(n_people=24, buckets=(1, 8), held_out=0.25, paraphrases=5, shuffle=True, seed=1)
    vid = save_corpus(store, spec)
    ids = []
    for aug in (False, True):
        s = LabSettings(epochs=2, eval_every=1, batch_size=16, n_embd=32, n_layer=1, paraphrase_aug=aug)
        cfg = RunConfig(version_id=vid, model=LAB_MODEL, epochs=2, checkpoint="last", device="cpu", lab=lab_block(s, spec.to_dict()))
        ids.append(store.create_run(vid, cfg.to_dict(), name=cfg.display_name()))
        assert train_run(store, ids[-1]) == "finished"
    at = open_page("app_pages/runs.py")
    assert not at.exception, at.exception
    assert at.selectbox(key=f"rn_slice_{ids[-1]}").value == "exposure"  # the per-exposure slices
    assert any("read per exposure on the Lab page" in c.value for c in at.caption)
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception, at.exception
    assert sorted(at.multiselect(key="cmp_runs").value) == sorted(ids)
    columns = [list(map(str, d.value.columns)) for d in at.dataframe]
    assert any(f"Δ #{ids[1]} · lab GPT-2 · paraphrase augmentation" in c for c in columns)  # the change against the reference
    by_exposure = next(d.value for d in at.dataframe if "seen (×)" in d.value.columns)
    assert list(by_exposure["seen (×)"]) == [0, 1, 8] and "Δ accuracy [95 %]" in by_exposure.columns
    assert any(s.value == "By how often each fact was seen" for s in at.subheader)


def test_the_probe_section_shows_a_stored_probe_and_keeps_its_settings(home):
    from core.data import assets
    from core.lab import facts as F

    if not assets.is_ready("smollm2"):
        pytest.skip("the smollm2 asset is not fetched (python -m core.data.assets fetch)")
    rows = [
        {"family": "capital", "subject": "France", "question": "What is the capital of France?", "truth": "Paris", "answer": "Paris",
         "confidence": 1.0, "probability": 0.8, "right": True, "greedy": ["Paris"], "greedy_right": 1.0, "samples": ["Paris"],
         "sampled_right": 1.0, "category": "known"},
        {"family": "number", "subject": "Iridium", "question": "What is the atomic number of Iridium?", "truth": "77", "answer": "107",
         "confidence": 1.0, "probability": 0.2, "right": False, "greedy": ["107"], "greedy_right": 0.0, "samples": ["107"],
         "sampled_right": 0.0, "category": "unknown"},
    ]  # fmt: skip
    settings = F.ProbeSettings(n_facts=2, greedy_prompts=1, samples=1)
    F.save_probe(home, {"model": "SmolLM2", "device": "cpu", "settings": settings.to_dict(), "rows": rows,
                        "summary": F.summarise(rows, 0.9), "load_seconds": 1.0, "seconds": 2.0})  # fmt: skip
    at = open_page("app_pages/lab.py")
    assert not at.exception, at.exception
    assert at.button(key="lb_pr_go").proto.label == "Probe SmolLM2 in the background"
    words = " ".join(m.value for m in at.markdown)
    assert "knows 50%" in words and "does not know 50%" in words and "100% of them are confident (≥ 0.9) and wrong" in words
    assert at.selectbox(key="lb_pr_pick").value == 1
    assert any("answer" in df.value and list(df.value["answer"]) == ["Paris", "107"] for df in at.dataframe)
    at.number_input(key="lb_pr_n").set_value(12).run()
    at.multiselect(key="lb_pr_families").set_value([]).run()
    assert any("fact families must be some of" in e.value for e in at.error) and at.button(key="lb_pr_go").disabled
    at.switch_page("app_pages/data.py").run()
    at.switch_page("app_pages/lab.py").run()
    assert at.number_input(key="lb_pr_n").value == 12


def test_the_fine_tuning_section_plans_from_a_probe_says_it_needs_a_gpu_and_shows_a_stored_one(home):
    import torch

    from core.data import assets
    from core.lab import facts as F
    from core.lab.finetune import TuneSettings, plan, tune_table

    if not assets.is_ready("smollm2"):
        pytest.skip("the smollm2 asset is not fetched (python -m core.data.assets fetch)")
    at = open_page("app_pages/lab.py")
    assert any("Probe the model above first" in i.value for i in at.info)
    chosen = F.load_facts(["capital"])[:10]
    cats = ["known"] * 5 + ["unknown"] * 5
    rows = [
        {"family": f.family, "subject": f.subject, "question": f.question, "truth": f.answer, "answer": f.answer if c == "known" else "Oslo",
         "confidence": 1.0, "probability": 1.0, "right": c == "known", "greedy": [], "greedy_right": 0.0, "samples": [],
         "sampled_right": 0.0, "category": c}
        for f, c in zip(chosen, cats)
    ]  # fmt: skip
    settings = F.ProbeSettings(n_facts=10, families=("capital",), greedy_prompts=1, samples=1)
    F.save_probe(home, {"model": "SmolLM2", "device": "cpu", "settings": settings.to_dict(), "rows": rows,
                        "summary": F.summarise(rows, 0.9), "load_seconds": 1.0, "seconds": 2.0})  # fmt: skip
    at.run()
    assert not at.exception, at.exception
    # 40 % of each category held out (2 + 2), of the 3 + 3 left all six make half unknown
    assert any("Fine-tunes on 6 facts (3 unknown, 3 known or maybe); 4 are held out and 0 not chosen" in c.value for c in at.caption)
    at.slider(key="lb_tu_share").set_value(1.0).run()
    assert any("Fine-tunes on 3 facts (3 unknown, 0 known or maybe); 4 are held out and 3 not chosen" in c.value for c in at.caption)
    go = at.button(key="lb_tu_go")
    if not torch.cuda.is_available():
        assert go.disabled and any("needs a GPU, and this machine has none" in i.value for i in at.info)
    roles = plan(cats, TuneSettings(probe_id=1)).tolist()
    after = [{**r, "answer": "I don't know" if c == "unknown" else r["answer"], "right": c == "known"} for r, c in zip(rows, cats)]
    F.save_record(home, {"model": "SmolLM2", "device": "cuda:0", "probe": 1, "probe_settings": settings.to_dict(),
                         "settings": TuneSettings(probe_id=1, idk=True).to_dict(), "categories": cats, "roles": roles,
                         "targets": ["I don't know" if c == "unknown" else r["truth"] for r, c in zip(rows, cats)],
                         "history": [{"epoch": 0, "fit tuned unknown": 0.0, "fit tuned known": 1.0},
                                     {"epoch": 8, "loss": 0.1, "fit tuned unknown": 1.0, "fit tuned known": 1.0}],
                         "before": rows, "after": after, "table": tune_table(rows, after, roles).to_dict("records"),
                         "train_seconds": 12.0, "seconds": 30.0}, folder=F.TUNES_DIR, prefix="tune")  # fmt: skip
    at.switch_page("app_pages/data.py").run()
    at.switch_page("app_pages/lab.py").run()
    assert not at.exception, at.exception
    assert at.slider(key="lb_tu_share").value == 1.0  # kept while away
    words = " ".join(m.value for m in at.markdown)
    assert "Fine-tuned on 6 facts (3 of them unknown to the model before, taught “I don’t know”)" in words
    assert "of those it did not know: 0%, then 100%" in words and "hallucination @τ 50% → 0%, “I don’t know” 50%." in words
    assert any("taught" in df.value and list(df.value["after"])[-1] == "I don't know" for df in at.dataframe)
