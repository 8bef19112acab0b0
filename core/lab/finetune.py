"""Fine-tuning the lab's real model on facts it knows and facts it does not — the plan and what it shows.

Gekhman et al. (2024) fine-tuned a model on closed-book questions whose answers it already knew or
did not know (SliCK categories from a probe) and found that the unknown ones are fitted late and,
once fitted, make the model hallucinate more on facts it was not fine-tuned on. The lab does the
same with SmolLM2 on the shipped facts (``core.lab.facts``), starting from a stored probe:

- ``plan`` keeps ``held_out`` of each category out of fine-tuning (re-probed only), then fine-tunes
  on as many of the rest as give the asked **share of unknown facts** (known and "maybe" facts make
  up the remainder), drawn by the seed;
- each fine-tuned fact is taught its true answer, or — with ``idk`` on, for the unknown ones —
  "I don't know" (abstention training, as R-Tuning does);
- after every ``eval_every`` epochs the model answers each probed fact's first prompt greedily
  (``curve_point``), and at the end the whole probe is asked again with the same prompts and samples.

``tune_table`` sets the probe before and after side by side per (fine-tuned or not, category);
``tune_findings`` says it in words. Torch-free: the loop itself is ``core.lab.llm.run_tune``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError
from core.lab.corpus import known_fields
from core.lab.facts import IDK, Fact, is_abstention, is_right, summarise
from core.metrics import DEFAULT_TAU

SETS = ("tuned", "untuned")
SET_WORDS = {"tuned": "fine-tuned on", "untuned": "not fine-tuned on"}


@dataclass(frozen=True)
class TuneSettings:
    probe_id: int = 0  # the stored probe whose facts and categories are used
    unknown_share: float = 0.5  # of the fine-tuned facts, the share the probe found unknown
    held_out: float = 0.4  # of each category, kept out of fine-tuning
    idk: bool = False  # teach the unknown facts "I don't know" instead of their answer
    epochs: int = 8
    lr: float = 5e-5
    batch_size: int = 8
    eval_every: int = 2  # epochs between greedy evaluations
    seed: int = 0

    def __post_init__(self) -> None:
        for problem in self.problems():
            raise DataError(problem)

    def problems(self) -> list[str]:
        out = []
        if not 0 <= self.unknown_share <= 1:
            out.append(f"the share of unknown facts must be in [0, 1] (got {self.unknown_share:g})")
        if not 0 <= self.held_out < 1:
            out.append(f"the share held out must be in [0, 1) (got {self.held_out:g})")
        if not 1 <= self.epochs <= 100:
            out.append(f"epochs must be between 1 and 100 (got {self.epochs})")
        if not 0 < self.lr <= 1e-2:
            out.append(f"the learning rate must be in (0, 0.01] (got {self.lr:g})")
        if not 1 <= self.batch_size <= 256:
            out.append(f"the batch size must be between 1 and 256 (got {self.batch_size})")
        if not 1 <= self.eval_every <= self.epochs:
            out.append(f"evaluate every 1 to {self.epochs} epochs (got {self.eval_every})")
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TuneSettings:
        return known_fields(cls, d, "fine-tuning settings")


def plan(categories: Sequence[str], settings: TuneSettings) -> np.ndarray:
    """Which probed facts to fine-tune on (a boolean mask over ``categories``, the probe's SliCK
    category per fact): ``held_out`` of each category (rounded down) stays out, and of the rest the
    largest set whose share of unknown facts is ``unknown_share`` (rounded to whole facts) is taken."""
    rng = np.random.default_rng(settings.seed)
    cats = np.asarray(categories)
    pools: dict[str, list[int]] = {"known": [], "unknown": []}
    for cat in ("known", "maybe", "unknown"):
        idx = rng.permutation(np.flatnonzero(cats == cat))
        keep = idx[int(len(idx) * settings.held_out) :]
        pools["unknown" if cat == "unknown" else "known"] += keep.tolist()
    k, u, share = len(pools["known"]), len(pools["unknown"]), settings.unknown_share
    size = u if share == 1 else k if share == 0 else int(np.floor(min(u / share, k / (1 - share)) + 1e-9))
    n_unknown = round(size * share)
    chosen = [*rng.permutation(pools["unknown"])[:n_unknown].tolist(), *rng.permutation(pools["known"])[: size - n_unknown].tolist()]
    if not chosen:
        raise DataError(
            "nothing to fine-tune on: the probe has no facts of the asked kind left after holding some out "
            f"({k} known or maybe, {u} unknown); probe more facts or change the share of unknown facts"
        )
    mask = np.zeros(len(cats), dtype=bool)
    mask[chosen] = True
    return mask


def target(fact: Fact, category: str, idk: bool) -> str:
    """What a fine-tuned fact is taught: its answer, or "I don't know" for an unknown one with ``idk``."""
    return IDK if idk and category == "unknown" else fact.answer


def curve_point(answers: Sequence[str], facts: Sequence[Fact], categories: Sequence[str], tuned: np.ndarray,
                targets: Sequence[str]) -> dict[str, float]:  # fmt: skip
    """One evaluation's figures from each fact's greedy answer: per (set, category), the share right
    (``acc <set> <category>``) and, for the fine-tuned facts, the share answering what they were taught
    (``fit tuned <category>``); and the share of not-fine-tuned facts answered "I don't know"."""
    out: dict[str, float] = {}
    right = np.array([is_right(a, f.answer) for a, f in zip(answers, facts)])
    fit = np.array([is_right(a, t) for a, t in zip(answers, targets)])
    cats = np.asarray(categories)
    for name, mask in (("tuned", tuned), ("untuned", ~tuned)):
        for cat in ("known", "maybe", "unknown"):
            sel = mask & (cats == cat)
            if sel.any():
                out[f"acc {name} {cat}"] = float(right[sel].mean())
                if name == "tuned":
                    out[f"fit tuned {cat}"] = float(fit[sel].mean())
    if (~tuned).any():
        out["idk untuned"] = float(np.mean([is_abstention(a) for a, m in zip(answers, tuned) if not m]))
    return out


def tune_table(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]], tuned: Sequence[bool],
               tau: float = DEFAULT_TAU) -> pd.DataFrame:  # fmt: skip
    """The probe before and after fine-tuning, per set (fine-tuned on or not) and the probe's category
    (``all`` too): n, accuracy, hallucination @τ and, after, the share abstained. The rows of ``after``
    keep the category from ``before`` (what the model knew before it was fine-tuned)."""
    rows = []
    for name in SETS:
        sel = [i for i, t in enumerate(tuned) if t == (name == "tuned")]
        if not sel:
            continue
        b = summarise([before[i] for i in sel], tau)
        a = summarise([{**after[i], "category": before[i]["category"]} for i in sel], tau)
        for cat in (*b.keys(),):
            rows.append({
                "set": SET_WORDS[name], "category": cat, "n": int(b[cat]["n"]),
                "accuracy before": b[cat]["accuracy"], "accuracy after": a[cat]["accuracy"],
                "hallucination before": b[cat]["hallucination"], "hallucination after": a[cat]["hallucination"],
                "abstained after": a[cat]["abstained"],
            })  # fmt: skip
    return pd.DataFrame(rows)


def history_frame(history: Sequence[Mapping[str, float]]) -> pd.DataFrame:
    """A fine-tuning's evaluations as long rows (epoch, series, value) for a chart."""
    rows = [{"epoch": h["epoch"], "series": k, "value": v} for h in history for k, v in h.items() if k not in ("epoch", "loss")]
    return pd.DataFrame(rows, columns=["epoch", "series", "value"])


def tune_findings(record: Mapping[str, Any]) -> list[str]:
    """What a fine-tuning shows, in words."""
    table = pd.DataFrame(record["table"])
    s = record["settings"]
    tuned = record["tuned"]
    n_unknown = sum(1 for t, c in zip(tuned, record["categories"]) if t and c == "unknown")
    out = [
        f"Fine-tuned on {sum(tuned)} facts ({n_unknown} of them unknown to the model before, taught "
        f"{'“I don’t know”' if s['idk'] else 'their answers'}) for {s['epochs']} epochs; {len(tuned) - sum(tuned)} facts held out."
    ]
    hist = record["history"]
    fit_u = [h.get("fit tuned unknown") for h in hist if h.get("fit tuned unknown") is not None]
    fit_k = [h.get("fit tuned known") for h in hist if h.get("fit tuned known") is not None]
    if fit_u and fit_k:
        out.append(
            f"Answered as taught, of the fine-tuned facts the model knew: {fit_k[0]:.0%} at the first evaluation, "
            f"{fit_k[-1]:.0%} at the end; of those it did not know: {fit_u[0]:.0%}, then {fit_u[-1]:.0%}."
        )
    held = table[(table["set"] == SET_WORDS["untuned"]) & (table["category"] == "all")]
    if len(held):
        h = held.iloc[0]
        out.append(
            f"On the {int(h['n'])} facts it was not fine-tuned on: accuracy {h['accuracy before']:.0%} → {h['accuracy after']:.0%}, "
            f"hallucination @τ {h['hallucination before']:.0%} → {h['hallucination after']:.0%}"
            + (f", “I don’t know” {h['abstained after']:.0%}." if s["idk"] else ".")
        )
    return out
