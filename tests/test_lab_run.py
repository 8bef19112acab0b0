"""A lab run through the worker: the run's rows, files and reader, like any run."""

from __future__ import annotations

import numpy as np
import pytest

from core.lab.corpus import ATTRIBUTES, CorpusSpec
from core.lab.settings import LAB_MODEL, LabSettings, lab_block
from core.lab.stored import save_corpus
from core.metrics.results import RunResults
from core.train.config import RunConfig
from core.train.worker import train_run

SPEC = CorpusSpec(n_people=24, buckets=(1, 8), held_out=0.25, paraphrases=5, shuffle=True, seed=0)


def _config(vid: int, **settings) -> RunConfig:
    s = LabSettings(**{"epochs": 4, "eval_every": 2, "batch_size": 16, "n_embd": 32, "n_layer": 1, **settings})
    return RunConfig(version_id=vid, model=LAB_MODEL, epochs=s.epochs, checkpoint="last", device="cpu", lab=lab_block(s, SPEC.to_dict()))


def _plain_and_augmented(store) -> tuple[int, list[int]]:
    """A saved corpus and two finished runs on it: plain, then with paraphrase augmentation."""
    vid = save_corpus(store, SPEC)
    ids = []
    for aug in (False, True):
        cfg = _config(vid, paraphrase_aug=aug)
        ids.append(store.create_run(vid, cfg.to_dict(), name=cfg.display_name()))
        assert train_run(store, ids[-1]) == "finished"
    return vid, ids


def test_a_lab_run_writes_per_exposure_rows_predictions_and_its_table(store):
    vid = save_corpus(store, SPEC)
    cfg = _config(vid).validate(modality="text")
    assert cfg.display_name() == "lab GPT-2"
    run_id = store.create_run(vid, cfg.to_dict(), name=cfg.display_name())
    assert train_run(store, run_id) == "finished", store.run(run_id).message
    res = RunResults(store, run_id)
    assert res.eval_steps("test") == sorted(res.eval_steps("test")) and len(res.eval_steps("test")) == 2
    sl = res.slices()
    assert set(sl["column"]) == {"exposure"} and set(sl["value"]) == {"0", "1", "8"}
    n = sl[sl["metric"] == "n"].set_index("value")["score"]
    assert n["0"] == 6 * len(ATTRIBUTES) and n["1"] == 9 * len(ATTRIBUTES) and n["8"] == 9 * len(ATTRIBUTES)
    values = res.values()
    assert 0 <= values["accuracy"] <= 1 and 0 <= values["lab_invented"] <= 1
    preds = res.predictions()
    assert len(preds) == 24 * len(ATTRIBUTES)
    lab = res.files.read_json("lab.json")
    assert lab is not None and [e["epoch"] for e in lab["evaluations"]] == [2, 4]
    assert lab["monofact_rate"] == pytest.approx(0.5)  # 9 of the 18 people who appear do so once
    assert set(lab["evaluations"][-1]["table"]) == {"0", "1", "8"}
    assert res.summary()["checkpoint"] == "last" and res.result_step == res.eval_steps("test")[-1]
    assert "accuracy by exposure" in store.run(run_id).message


def test_a_lab_run_with_questions_asks_only_the_others(store):
    vid = save_corpus(store, SPEC)
    cfg = _config(vid, qa_share=0.5, idk_share=0.5)
    assert "questions of 50% in training" in cfg.display_name()
    run_id = store.create_run(vid, cfg.to_dict())
    assert train_run(store, run_id) == "finished", store.run(run_id).message
    preds = RunResults(store, run_id).predictions()
    assert len(preds) == (9 + 3) * len(ATTRIBUTES)  # 18 shown − 9 with questions in training; 6 held out − 3 taught "unknown"
    ds = store.load_dataset(vid)
    asked_people = set(ds.meta["person"].to_numpy()[preds["item"].to_numpy()])
    assert len(asked_people) == 12
    assert np.array_equal(preds["label"].to_numpy(), ds.labels[preds["item"].to_numpy()])  # each row is its stored question
    # the page's hallucination per exposure is the lab's (an 'unknown' answer is not a wrong one), as in lab.json
    res = RunResults(store, run_id)
    sl = res.slices()
    stored = sl[sl["metric"] == "hallucination_rate"].set_index("value")["score"]
    table = res.files.read_json("lab.json")["evaluations"][-1]["table"]
    assert {k: round(float(v), 9) for k, v in stored.items()} == {k: round(t["hallucination"], 9) for k, t in table.items()}


def test_a_lab_config_says_what_is_missing():
    with pytest.raises(ValueError, match="corpus's settings"):
        RunConfig(version_id=1, model=LAB_MODEL).validate()
    with pytest.raises(ValueError, match="belong to a lab run"):
        RunConfig(version_id=1, model="mlp", lab={"epochs": 3}).validate()
    with pytest.raises(ValueError, match="question share above 0"):
        RunConfig(version_id=1, model=LAB_MODEL, lab={"idk_share": 0.5, "corpus": SPEC.to_dict()}).validate()


def test_findings_in_plain_words_by_hand():
    import pandas as pd

    from core.lab.view import findings

    table = pd.DataFrame(
        {
            "exposure": [0, 1, 8],
            "n": [10, 20, 20],
            "accuracy": [0.0, 0.5, 1.0],
            "hallucination_rate": [0.9, 0.25, 0.0],
            "ece": [0.5, 0.1, 0.02],
            "invented": [0.8, np.nan, np.nan],
            "invented_confident": [0.3, np.nan, np.nan],
            "abstained": [0.2, 0.0, 0.0],
        }
    )
    words = findings(table, {"monofact_rate": 0.5, "ece_seen": 0.06, "bound": 0.44, "invented": 0.8}, 0.9)
    assert words[0] == "The model answers right 50% of the facts seen 1× and 100% of the facts seen 8×."
    assert words[1].startswith("Of the facts seen once, 25% are answered wrongly with confidence ≥ 0.9")
    assert (
        words[2]
        == "For people the corpus never mentions it invents an answer to 80% of the questions (30% with confidence ≥ 0.9) and says 'unknown' to 20%."
    )
    assert words[3].endswith("the monofact rate (50%) minus its miscalibration (0.06) = 44%; measured on the people it never saw: 80%.")
    table["hallucination_rate"] = 0.0
    assert findings(table, {"bound": None}, 0.9)[1] == "No wrong answer about a fact seen once reaches confidence 0.9."


def test_the_report_has_a_lab_section(store):
    from core.report.html import build_report

    _, ids = _plain_and_augmented(store)
    page = build_report(store, ids)
    assert "<section id='lab'><h2>Knowledge-gap lab</h2>" in page
    assert page.count("The model answers right") == 2 and "For people the corpus never mentions it invents" in page
    assert "Accuracy and hallucination against how often the fact was seen" in page
    assert "per exposure count: the change on the questions both runs were asked" in page and "Δ accuracy [95 %]" in page
    assert "A real model, probed" not in page  # no probe kept
    from core.lab import facts as F

    rows = [{"family": "capital", "question": "What is the capital of Chad?", "truth": "N'Djamena", "answer": "Chad", "confidence": 1.0,
             "probability": 0.7, "right": False, "category": "unknown", "greedy_right": 0.0, "sampled_right": 0.0}]  # fmt: skip
    F.save_probe(
        store.home, {"model": "SmolLM2", "settings": F.ProbeSettings(n_facts=1).to_dict(), "rows": rows, "summary": F.summarise(rows)}
    )
    page = build_report(store, ids)
    assert "A real model, probed: SmolLM2 (probe 1," in page and "100% of them are confident (≥ 0.9) and wrong" in page
    assert "Confidence against correctness, by what the model knows" in page
    assert "The real model, fine-tuned" not in page  # no fine-tuning kept
    from core.lab.finetune import TuneSettings, tune_table

    after = [{**rows[0], "answer": "I don't know"}]
    F.save_record(store.home, {"model": "SmolLM2", "probe": 1, "settings": TuneSettings(probe_id=1, idk=True).to_dict(), "roles": ["held"],
                               "categories": ["unknown"], "history": [{"epoch": 0, "acc untuned unknown": 0.0}], "before": rows,
                               "after": after, "table": tune_table(rows, after, ["held"]).to_dict("records")},
                  folder=F.TUNES_DIR, prefix="tune")  # fmt: skip
    page = build_report(store, ids)
    assert "The real model, fine-tuned (fine-tuning 1 from probe 1," in page and "Fine-tuned on 0 facts" in page
    assert "hallucination @τ 100% → 0%, “I don’t know” 100%." in page and "<th>abstained after</th>" in page
    assert "Fine-tuning the real model, evaluation by evaluation" in page


def test_exposure_deltas_pair_the_same_questions(store):
    from core.lab.compare import delta_words, exposure_deltas

    vid, ids = _plain_and_augmented(store)
    results = [RunResults(store, i) for i in ids]
    ds = store.load_dataset(vid)
    table = exposure_deltas(results, [ds, ds])
    assert list(table["exposure"]) == [0, 1, 8] and list(table["n"]) == [6 * 5, 9 * 5, 9 * 5]
    for row in table.itertuples():  # each change is the difference of the two runs' own accuracies on those questions
        mine = []
        for r in results:
            preds = r.predictions()
            ex = ds.meta["exposure"].to_numpy()[preds["item"].to_numpy()]
            mine.append(float((preds["pred"] == preds["label"])[ex == row.exposure].mean()))
        assert row.accuracy_ref == pytest.approx(mine[0]) and row.accuracy_run == pytest.approx(mine[1])
        assert row.accuracy_low <= row.accuracy_delta <= row.accuracy_high
    words = delta_words(table, {ids[1]: "aug"})
    assert (
        list(words["run"]) == ["aug"] * 3
        and words["Δ accuracy [95 %]"].str.match(r"^[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]$").all()
    )
    assert exposure_deltas(results[:1], [ds]).empty
