"""Fine-tuning the lab's real model: the plan's exact composition, what each fact is taught, the
figures before and after by hand, abstentions, and — with a tiny model of SmolLM2's tokenizer on
the CPU — the loss on the taught answer only, a fine-tuning that fits what it was taught, and the
stored record of a run in the background."""

from __future__ import annotations

import numpy as np
import pytest

from core.data import assets
from core.errors import DataError
from core.lab import facts as F
from core.lab.finetune import TuneSettings, curve_point, history_frame, plan, target, tune_findings, tune_table

needs_smollm2 = pytest.mark.skipif(
    not assets.is_ready("smollm2"), reason="the smollm2 asset is not fetched (python -m core.data.assets fetch)"
)


def test_the_plan_holds_out_a_share_of_each_category_and_mixes_the_asked_share_of_unknowns():
    cats = ["known"] * 10 + ["maybe"] * 5 + ["unknown"] * 10
    c = np.array(cats)
    roles = plan(cats, TuneSettings(held_out=0.4, unknown_share=0.5, seed=3))
    tuned, held = roles == "tuned", roles == "held"
    # held out: 4 known, 2 maybe, 4 unknown; left: 9 known-or-maybe, 6 unknown → 12 facts, 6 of each, 3 known-or-maybe unused
    assert (held & (c == "known")).sum() == 4 and (held & (c == "maybe")).sum() == 2 and (held & (c == "unknown")).sum() == 4
    assert tuned.sum() == 12 and (tuned & (c == "unknown")).sum() == 6 and (roles == "unused").sum() == 3
    assert np.array_equal(roles, plan(cats, TuneSettings(held_out=0.4, unknown_share=0.5, seed=3)))  # seeded
    only_known = plan(cats, TuneSettings(held_out=0.4, unknown_share=0.0, seed=3))
    assert (only_known == "tuned").sum() == 9 and not ((only_known == "tuned") & (c == "unknown")).any()
    only_unknown = plan(cats, TuneSettings(held_out=0.4, unknown_share=1.0, seed=3))
    assert (only_unknown == "tuned").sum() == 6 and ((only_unknown == "tuned") <= (c == "unknown")).all()
    for other in (only_known, only_unknown):  # the same facts held out whatever the share
        assert np.array_equal(other == "held", held)
    capped = plan(cats, TuneSettings(held_out=0.4, unknown_share=0.5, max_facts=5, seed=3))
    assert (capped == "tuned").sum() == 5 and ((capped == "tuned") & (c == "unknown")).sum() == 2  # round(2.5) to even
    quarter = plan(cats, TuneSettings(held_out=0.0, unknown_share=0.25))  # 15 known-or-maybe, 10 unknown → 20 facts
    assert (quarter == "tuned").sum() == 20 and ((quarter == "tuned") & (c == "unknown")).sum() == 5
    assert not (quarter == "held").any()
    with pytest.raises(DataError, match="nothing to fine-tune on"):
        plan(["known", "known"], TuneSettings(unknown_share=1.0))


def test_settings_refuse_what_cannot_work():
    with pytest.raises(DataError, match="share of unknown facts"):
        TuneSettings(unknown_share=1.5)
    with pytest.raises(DataError, match="held out"):
        TuneSettings(held_out=1.0)
    with pytest.raises(DataError, match="most facts to fine-tune on"):
        TuneSettings(max_facts=-1)
    with pytest.raises(DataError, match="evaluate every"):
        TuneSettings(epochs=3, eval_every=4)
    with pytest.raises(DataError, match="unknown fine-tuning settings: colour"):
        TuneSettings.from_dict({"colour": 1})
    s = TuneSettings(probe_id=2, idk=True, lr=1e-4)
    assert TuneSettings.from_dict(s.to_dict()) == s


def test_unknown_facts_are_taught_i_dont_know_only_with_idk():
    paris = F.Fact("capital", "France", "Paris")
    assert target(paris, "unknown", idk=False) == "Paris"
    assert target(paris, "unknown", idk=True) == F.IDK
    assert target(paris, "known", idk=True) == target(paris, "maybe", idk=True) == "Paris"
    assert F.is_abstention("I don't know.") and F.is_abstention("i dont know") and not F.is_abstention("Paris")


def _row(cat: str, right: bool, conf: float, answer: str = "x") -> dict:
    return {"category": cat, "right": right, "confidence": conf, "answer": answer}


def test_an_abstention_is_never_a_hallucination():
    rows = [_row("unknown", False, 1.0, "Lyon"), _row("unknown", False, 1.0, F.IDK), _row("unknown", False, 0.2), _row("known", True, 1.0)]
    s = F.summarise(rows, tau=0.9)
    assert s["unknown"]["hallucination"] == pytest.approx(1 / 3)
    assert s["unknown"]["abstained"] == pytest.approx(1 / 3)
    assert s["all"]["hallucination"] == pytest.approx(1 / 4) and s["all"]["abstained"] == pytest.approx(1 / 4)


def test_curve_points_and_the_table_by_hand():
    facts = [F.Fact("capital", c, a) for c, a in (("A", "a"), ("B", "b"), ("C", "c"), ("D", "d"))]
    cats = ["known", "unknown", "known", "unknown"]
    roles = ["tuned", "tuned", "held", "held"]
    targets = ["a", F.IDK, "c", "d"]
    point = curve_point(["a", "I don't know", "x", "I don't know"], facts, cats, roles, targets)
    assert point == {
        "acc tuned known": 1.0, "fit tuned known": 1.0, "acc tuned unknown": 0.0, "fit tuned unknown": 1.0,
        "acc held known": 0.0, "acc held unknown": 0.0, "idk held": 0.5,
    }  # fmt: skip
    assert "acc unused known" not in curve_point(["a"] * 4, facts, cats, ["tuned", "tuned", "unused", "held"], targets)
    before = [
        _row("known", True, 1.0, "a"),
        _row("unknown", False, 0.95, "q"),
        _row("known", True, 1.0, "c"),
        _row("unknown", False, 0.5, "r"),
    ]
    after = [_row("x", True, 1.0, "a"), _row("x", False, 1.0, F.IDK), _row("x", False, 1.0, "x"), _row("x", False, 1.0, "s")]
    table = tune_table(before, after, roles, tau=0.9).set_index(["set", "category"])
    held = table.loc[("held out", "all")]
    assert held["n"] == 2 and held["accuracy before"] == 0.5 and held["accuracy after"] == 0.0
    assert held["hallucination before"] == 0.0 and held["hallucination after"] == 1.0
    mine = table.loc[("fine-tuned on", "unknown")]
    assert mine["hallucination before"] == 1.0 and mine["hallucination after"] == 0.0 and mine["abstained after"] == 1.0
    assert table.loc[("held out", "known"), "accuracy after"] == 0.0  # the category is the one before
    assert set(table.index.get_level_values(0)) == {"fine-tuned on", "held out"}  # no fact unused


def test_findings_read_the_record():
    record = {
        "settings": TuneSettings(idk=True, epochs=4).to_dict(),
        "roles": ["tuned", "tuned", "held"],
        "categories": ["known", "unknown", "known"],
        "history": [{"epoch": 0, "fit tuned known": 1.0, "fit tuned unknown": 0.0}, {"epoch": 4, "fit tuned known": 1.0, "fit tuned unknown": 0.5}],
        "table": [{"set": "held out", "category": "all", "n": 1, "accuracy before": 1.0, "accuracy after": 0.0,
                   "hallucination before": 0.0, "hallucination after": 0.0, "abstained after": 1.0}],
    }  # fmt: skip
    words = " ".join(tune_findings(record))
    assert "Fine-tuned on 2 facts (1 of them unknown" in words and "“I don’t know”" in words
    assert "of those it did not know: 0%, then 50%" in words
    assert "accuracy 100% → 0%" in words and "“I don’t know” 100%" in words
    long = history_frame(record["history"])
    assert set(long["series"]) == {"fit tuned known", "fit tuned unknown"} and len(long) == 4


# --- with a tiny model of SmolLM2's tokenizer, on the CPU -----------------------------------------


def _tiny(log=None):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from core.lab.llm import load_tokenizer

    tok = load_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=4, max_position_embeddings=256, tie_word_embeddings=True)  # fmt: skip
    return LlamaForCausalLM(cfg).eval(), tok


def _store_probe(home, cats: list[str]) -> dict:
    chosen = F.load_facts(["capital"])[: len(cats)]
    settings = F.ProbeSettings(n_facts=len(cats), families=("capital",), shots=0, greedy_prompts=1, samples=2, max_new_tokens=6)
    rows = [
        {"family": f.family, "subject": f.subject, "question": f.question, "truth": f.answer, "answer": f.answer if c == "known" else "Nowhere",
         "confidence": 1.0, "probability": 1.0, "right": c == "known", "greedy": [], "greedy_right": float(c == "known"),
         "samples": [], "sampled_right": 0.0, "category": c}
        for f, c in zip(chosen, cats)
    ]  # fmt: skip
    return F.save_probe(
        home, {"model": "tiny", "device": "cpu", "settings": settings.to_dict(), "rows": rows, "summary": F.summarise(rows)}
    )


@needs_smollm2
@pytest.mark.slow
def test_the_loss_falls_on_the_taught_answer_and_its_line_end_only():
    from core.lab.llm import encode_pairs, load_tokenizer

    tok = load_tokenizer()
    batch = encode_pairs(tok, [("Q: What is the capital of France?\nA:", "Paris"), ("Q: Hi?\nA:", F.IDK)], "cpu")
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    for i, taught in enumerate(("Paris", F.IDK)):
        lab = batch["labels"][i]
        assert tok.decode(lab[lab != -100].tolist()) == f" {taught}\n"
        n = int(batch["attention_mask"][i].sum())
        assert tok.decode(batch["input_ids"][i, :n].tolist()).endswith(f"A: {taught}\n")
        assert (lab[n:] == -100).all()
    assert int(batch["attention_mask"][1].sum()) < batch["input_ids"].shape[1]  # the shorter row is padded on the right


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_fine_tuning_says_so(tmp_path):
    from core.lab.llm import run_tune

    _store_probe(tmp_path, ["known", "unknown"])
    with pytest.raises(DataError, match="needs a GPU"):
        run_tune(tmp_path, TuneSettings(probe_id=1), loader=_tiny)


@needs_smollm2
@pytest.mark.slow
def test_a_tiny_model_fits_what_it_is_taught_and_the_record_says_so(tmp_path):
    from core.lab.llm import run_tune

    cats = ["known", "known", "unknown", "unknown", "known", "unknown"]
    _store_probe(tmp_path, cats)
    with pytest.raises(DataError, match="no stored probe 7"):
        run_tune(tmp_path, TuneSettings(probe_id=7), loader=_tiny, allow_cpu=True)
    seen: list[str] = []
    settings = TuneSettings(probe_id=1, held_out=0.34, unknown_share=0.5, idk=True, epochs=40, eval_every=20, lr=3e-3, batch_size=4)
    rec = run_tune(tmp_path, settings, progress=lambda d, t, s: seen.append(s), log=lambda _: None, loader=_tiny, allow_cpu=True)
    assert rec["roles"] == plan(cats, settings).tolist() and rec["roles"].count("tuned") == 4
    assert [h["epoch"] for h in rec["history"]] == [0, 20, 40]
    last = rec["history"][-1]
    assert last["fit tuned known"] == 1.0 and last["fit tuned unknown"] == 1.0  # the taught answers, "I don't know" included
    assert rec["history"][0]["fit tuned unknown"] == 0.0 and rec["history"][1]["loss"] > last["loss"]
    assert [t for t, c in zip(rec["targets"], cats) if c == "unknown"] == [F.IDK] * 3
    table = {(r["set"], r["category"]): r for r in rec["table"]}
    assert table[("fine-tuned on", "unknown")]["abstained after"] == 1.0
    assert table[("fine-tuned on", "unknown")]["hallucination after"] == 0.0
    assert table[("fine-tuned on", "known")]["accuracy after"] == 1.0
    assert len(rec["after"]) == 6 and rec["device"] == "cpu"
    assert any(s.startswith("fine-tuning: epoch 40/40") for s in seen) and any(s.startswith("asking the probe again") for s in seen)


@needs_smollm2
@pytest.mark.slow
def test_a_fine_tuning_in_the_background_lands_as_a_record(tmp_path):
    from core.lab import llm

    _store_probe(tmp_path, ["known", "unknown", "known", "unknown"])
    job = llm.TuneJob(tmp_path, TuneSettings(probe_id=1, held_out=0.5, epochs=2, eval_every=1, batch_size=2), loader=_tiny, allow_cpu=True)
    job.start()
    job.join(timeout=580)
    assert not job.is_alive() and job.error is None, job.error
    (kept,) = F.records(tmp_path, folder=F.TUNES_DIR, prefix="tune")
    assert kept == job.record and kept["id"] == 1 and kept["probe"] == 1
    assert [h["epoch"] for h in kept["history"]] == [0, 1, 2]
    assert F.records(tmp_path) and F.records(tmp_path)[0]["id"] == 1  # the probe is still there, apart


def test_two_first_loads_at_once_keep_one_float_copy(tmp_path):
    from core.lab.llm import _publish

    cached = tmp_path / "hf"
    first, second = tmp_path / "hf.partial-a", tmp_path / "hf.partial-b"
    for folder, tag in ((first, "a"), (second, "b")):
        folder.mkdir()
        (folder / "config.json").write_text(tag)
    _publish(first, cached)
    _publish(second, cached)  # the other process finished first: its copy stays, ours goes
    assert (cached / "config.json").read_text() == "a" and not first.exists() and not second.exists()
    third = tmp_path / "hf.partial-c"
    third.mkdir()
    (third / "model.safetensors").write_text("x")
    (cached / "config.json").unlink()
    (cached / "other").write_text("y")  # a folder in the way that is not a finished copy: said, not hidden
    with pytest.raises(OSError):
        _publish(third, cached)
