"""The lab's real-model probe without the model: the fact set, prompts, answer matching, SliCK
categories, the summary's figures by hand, and the stored records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import DataError
from core.lab import facts as F
from core.metrics import ece, ece_from_conf, hallucination_from_conf, hallucination_rate


def test_the_shipped_facts_are_whole_and_sourced():
    all_facts = F.load_facts()
    by = {fam: F.load_facts([fam]) for fam in F.QUESTIONS}
    assert len(by["symbol"]) == len(by["number"]) == 118
    assert len(by["capital"]) > 150
    assert sum(map(len, by.values())) == len(all_facts)
    assert len({(f.family, f.subject) for f in all_facts}) == len(all_facts)
    assert all(f.answer.strip() and f.subject.strip() for f in all_facts)
    hydrogen = {f.family: f.answer for f in all_facts if f.subject == "Hydrogen"}
    assert hydrogen == {"symbol": "H", "number": "1"}
    assert F.Fact("capital", "France", "Paris") in by["capital"]
    assert set(F.sources()) == set(F.QUESTIONS)
    assert "MIT" in F.sources()["capital"] and "public domain" in F.sources()["symbol"]


def test_settings_refuse_what_cannot_work():
    with pytest.raises(DataError, match="fact families"):
        F.ProbeSettings(families=("capital", "rivers"))
    with pytest.raises(DataError, match="temperature"):
        F.ProbeSettings(temperature=0.0)
    with pytest.raises(DataError, match="unknown probe settings: colour"):
        F.ProbeSettings.from_dict({"colour": 1})
    s = F.ProbeSettings(n_facts=7, families=["symbol"])
    assert F.ProbeSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_choose_draws_equal_shares_by_the_seed():
    s = F.ProbeSettings(n_facts=10, seed=3)
    picked = F.choose(s)
    assert [f.family for f in picked].count("capital") == 4
    assert [f.family for f in picked].count("symbol") == [f.family for f in picked].count("number") == 3
    assert picked == F.choose(s) and picked != F.choose(F.ProbeSettings(n_facts=10, seed=4))
    assert len(set(picked)) == len(picked)


def test_prompts_show_other_facts_answered_then_ask():
    fact = F.Fact("capital", "France", "Paris")
    exemplars = [F.Fact("capital", "Peru", "Lima"), F.Fact("capital", "Japan", "Tokyo")]
    assert F.prompt(fact, exemplars) == (
        "Q: What is the capital of Peru?\nA: Lima\nQ: What is the capital of Japan?\nA: Tokyo\nQ: What is the capital of France?\nA:"
    )
    with pytest.raises(DataError, match="other facts"):
        F.prompt(fact, [fact])
    with pytest.raises(DataError, match="other facts"):
        F.prompt(fact, [F.Fact("symbol", "Iron", "Fe")])
    made = F.prompts(fact, F.ProbeSettings(shots=3, greedy_prompts=4), np.random.default_rng(0))
    assert len(made) == 4 and len(set(made)) == 4
    for p in made:
        assert p.count("Q: ") == 4 and p.endswith("Q: What is the capital of France?\nA:")
        assert "France?\nA: Paris" not in p


@pytest.mark.parametrize(
    ("said", "truth", "right"),
    [(" Paris", "Paris", True), ("Paris.\nQ: What", "Paris", True), ("paris", "Paris", True), ("Bogota", "Bogotá", True),
     (" N'Djamena", "N'Djamena", True), ("Lyon", "Paris", False), ("", "Paris", False), ("\n", "", False), ("11", "1", False)],
)  # fmt: skip
def test_answers_are_compared_on_their_first_line_loosely(said, truth, right):
    assert F.is_right(said, truth) is right


def test_slick_categories():
    assert F.categorise([True, True], [False]) == "known"
    assert F.categorise([True, False], [False]) == "maybe"
    assert F.categorise([False, False], [False, True]) == "maybe"
    assert F.categorise([False, False], [False, False]) == "unknown"
    assert F.categorise([False], []) == "unknown"


def test_the_summary_by_hand():
    rows = [
        {"category": "known", "right": True, "confidence": 1.0, "family": "capital"},
        {"category": "known", "right": True, "confidence": 0.5, "family": "capital"},
        {"category": "unknown", "right": False, "confidence": 0.95, "family": "number"},
        {"category": "unknown", "right": False, "confidence": 0.25, "family": "number"},
    ]
    s = F.summarise(rows, tau=0.9)
    assert s["known"] == pytest.approx(
        {"n": 2, "share": 0.5, "accuracy": 1.0, "confidence": 0.75, "hallucination": 0.0, "abstained": 0.0, "ece": 0.25}
    )
    assert s["unknown"] == pytest.approx(
        {"n": 2, "share": 0.5, "accuracy": 0.0, "confidence": 0.6, "hallucination": 0.5, "abstained": 0.0, "ece": 0.6}
    )
    assert s["all"]["hallucination"] == pytest.approx(0.25) and s["all"]["accuracy"] == pytest.approx(0.5)
    assert "maybe" not in s
    assert F.by_family(rows) == {
        "capital": {"known": 1.0, "maybe": 0.0, "unknown": 0.0},
        "number": {"known": 0.0, "maybe": 0.0, "unknown": 1.0},
    }
    words = " ".join(F.findings(s, 0.9))
    assert "knows 50%" in words and "does not know 50%" in words and "50% of them are confident" in words
    assert list(F.summary_table(s)["category"]) == ["known", "unknown", "all"]


def test_the_confidence_metrics_agree_with_the_classifier_ones():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4) * 0.3, size=200)
    labels = rng.integers(0, 4, size=200)
    conf, right = probs.max(axis=1), probs.argmax(axis=1) == labels
    assert ece_from_conf(conf, right) == pytest.approx(ece(probs, labels))
    assert hallucination_from_conf(conf, right, tau=0.7) == pytest.approx(hallucination_rate(probs, labels, tau=0.7))
    with pytest.raises(DataError):
        ece_from_conf([1.5], [True])
    with pytest.raises(DataError):
        hallucination_from_conf([0.5, 0.5], [True])


def test_probes_are_stored_with_ids_newest_first(tmp_path):
    first = F.save_probe(tmp_path, {"rows": [], "summary": {}})
    second = F.save_probe(tmp_path, {"rows": [1], "summary": {}})
    assert (first["id"], second["id"]) == (1, 2)
    (tmp_path / F.PROBES_DIR / "probe-9.json").write_text("{not json")
    kept = F.probes(tmp_path)
    assert [r["id"] for r in kept] == [2, 1] and kept[0]["rows"] == [1]
    assert F.probes(tmp_path / "nowhere") == []
