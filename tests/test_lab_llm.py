"""The lab's real model: SmolLM2-135M-Instruct from the shipped GGUF file answers facts, and the
probe's rows, categories and stored record come out of it."""

from __future__ import annotations

import pytest

from core.data import assets
from core.lab import facts as F

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not assets.is_ready("smollm2"), reason="the smollm2 asset is not fetched (python -m core.data.assets fetch)"),
]


@pytest.fixture(scope="module")
def smollm():
    from core.lab.llm import load_model

    return load_model(log=lambda _: None)


def test_smollm2_knows_the_capital_of_france_and_answers_the_rest(smollm):
    from core.lab.llm import probe_facts

    model, tok = smollm
    asked = [F.Fact("capital", "France", "Paris"), F.Fact("symbol", "Hydrogen", "H"), F.Fact("number", "Moscovium", "115")]
    seen: list[tuple[int, int]] = []
    settings = F.ProbeSettings(shots=3, greedy_prompts=2, samples=3, seed=0)
    rows = probe_facts(model, tok, asked, settings, progress=lambda done, total, _: seen.append((done, total)))
    assert [r["subject"] for r in rows] == ["France", "Hydrogen", "Moscovium"]
    france = rows[0]
    assert france["answer"] == "Paris" and france["right"] and france["category"] == "known"
    assert france["greedy"] == ["Paris", "Paris"] and france["greedy_right"] == 1.0
    for r in rows:
        assert len(r["greedy"]) == 2 and len(r["samples"]) == 3
        assert 0.0 <= r["confidence"] <= 1.0 and 0.0 <= r["probability"] <= 1.0
        assert r["category"] == F.categorise(
            [F.is_right(a, r["truth"]) for a in r["greedy"]], [F.is_right(a, r["truth"]) for a in r["samples"]]
        )
        assert r["answer"] == r["greedy"][0] and "\n" not in r["answer"]
    assert seen[-1] == (3 * 2 + 3 * 3, 3 * 2 + 3 * 3)
    again = probe_facts(model, tok, asked, settings)
    assert [r["samples"] for r in again] == [r["samples"] for r in rows]  # seeded sampling


def test_a_probe_in_the_background_lands_as_a_record(smollm, tmp_path):
    from core.lab.llm import ProbeJob

    job = ProbeJob(tmp_path, F.ProbeSettings(n_facts=3, shots=2, greedy_prompts=1, samples=2, seed=1))
    job.start()
    job.join(timeout=580)
    assert not job.is_alive() and job.error is None, job.error
    assert job.status() == (1.0, "done")
    (kept,) = F.probes(tmp_path)
    assert kept == job.record and kept["id"] == 1
    assert [r["family"] for r in kept["rows"]] == ["capital", "symbol", "number"]
    assert kept["summary"]["all"]["n"] == 3 and kept["settings"]["n_facts"] == 3
