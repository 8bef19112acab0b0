"""Robustness results kept with a run (``robustness.json`` in its folder), and what Compare and the
report show of them (torch-free)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.store.artifacts import RunFiles

NAME = "robustness.json"
ATTACK_WORDS = {"pgd": "PGD", "fgsm": "FGSM", "words": "WordNet word substitution"}


def save(files: RunFiles, record: dict[str, Any]) -> None:
    files.write_json(NAME, record)


def load(files: RunFiles) -> dict[str, Any] | None:
    return files.read_json(NAME)


def budget_words(record: dict[str, Any], budget: float) -> str:
    """ "ε = 0.1" for a pixel or column attack, "≤ 2 words" for the text attack."""
    return f"≤ {int(budget)} words" if record["attack"] == "words" else f"ε = {budget:g}"


def curve(record: dict[str, Any]) -> pd.DataFrame:
    """One row per budget (the clean inputs first, budget 0): accuracy, attack success rate and
    confident-wrong @τ."""
    clean = record["clean"]
    rows = [{"budget": 0.0, "accuracy": clean["accuracy"], "success_rate": 0.0, "confident_wrong": clean["confident_wrong"]}]
    rows += [{k: r[k] for k in ("budget", "accuracy", "success_rate", "confident_wrong")} for r in record["budgets"]]
    return pd.DataFrame(rows)


def table(labelled: list[tuple[str, dict[str, Any]]]) -> pd.DataFrame:
    """Runs × budgets: robust accuracy, attack success and confident-wrong @τ, for runs kept with
    the same attack (``labelled``: (run label, record))."""
    rows = []
    for name, rec in labelled:
        for _, r in curve(rec).iterrows():
            rows.append(
                {
                    "run": name,
                    "attack": ATTACK_WORDS.get(rec["attack"], rec["attack"]),
                    "budget": "clean" if r["budget"] == 0 else budget_words(rec, float(r["budget"])),
                    "accuracy": r["accuracy"],
                    "attack success": r["success_rate"],
                    f"confident-wrong @{rec['tau']:g}": r["confident_wrong"],
                }
            )
    return pd.DataFrame(rows)
