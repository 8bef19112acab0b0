"""Fine-tuning the lab's real model on facts it knows and facts it does not — the plan and what it shows.

Gekhman et al. (2024) fine-tuned a model on closed-book questions whose answers it already knew or
did not know (SliCK categories from a probe) and found that the unknown ones are fitted late and,
once fitted, make the model hallucinate more on facts it was not fine-tuned on. The lab does the
same with SmolLM2 on the shipped facts (``core.lab.facts``), starting from a stored probe:

- ``plan`` gives each probed fact a role: ``held_out`` of each category is **held out** (never
  fine-tuned on, the same facts whatever the share asked, so runs from one probe compare on them),
  and of the rest as many as give the asked **share of unknown facts** (known and "maybe" facts make
  up the remainder; at most ``max_facts``) are **tuned**, drawn by the seed; the others are unused;
- each fine-tuned fact is taught its true answer, or — with ``idk`` on, for the unknown ones —
  "I don't know" (abstention training, as R-Tuning does);
- after every ``eval_every`` epochs the model answers each probed fact's first prompt greedily
  (``curve_point``), and at the end the whole probe is asked again with the same prompts and samples.

``tune_table`` sets the probe before and after side by side per (role, category);
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

ROLES = ("tuned", "held", "unused")
ROLE_WORDS = {"tuned": "fine-tuned on", "held": "held out", "unused": "not chosen"}


@dataclass(frozen=True)
class TuneSettings:
    probe_id: int = 0  # the stored probe whose facts and categories are used
    unknown_share: float = 0.5  # of the fine-tuned facts, the share the probe found unknown
    held_out: float = 0.4  # of each category, kept out of fine-tuning
    max_facts: int = 0  # fine-tune on at most this many facts (0: as many as the share allows)
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
        if self.max_facts < 0:
            out.append(f"the most facts to fine-tune on must be 0 (no limit) or more (got {self.max_facts})")
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
    """Each probed fact's role (``ROLES``; ``categories``: the probe's SliCK category per fact):
    ``held_out`` of each category (rounded down) is held out, drawn first so that it does not depend
    on the share asked; of the rest the largest set whose share of unknown facts is ``unknown_share``
    (rounded to whole facts), at most ``max_facts``, is tuned; the others are unused."""
    rng = np.random.default_rng(settings.seed)
    cats = np.asarray(categories)
    roles = np.full(len(cats), "unused", dtype=object)
    pools: dict[str, list[int]] = {"known": [], "unknown": []}
    for cat in ("known", "maybe", "unknown"):
        idx = rng.permutation(np.flatnonzero(cats == cat))
        cut = int(len(idx) * settings.held_out)
        roles[idx[:cut]] = "held"
        pools["unknown" if cat == "unknown" else "known"] += idx[cut:].tolist()
    k, u, share = len(pools["known"]), len(pools["unknown"]), settings.unknown_share
    size = u if share == 1 else k if share == 0 else int(np.floor(min(u / share, k / (1 - share)) + 1e-9))
    if settings.max_facts:
        size = min(size, settings.max_facts)
    n_unknown = round(size * share)
    chosen = [*rng.permutation(pools["unknown"])[:n_unknown].tolist(), *rng.permutation(pools["known"])[: size - n_unknown].tolist()]
    if not chosen:
        raise DataError(
            "nothing to fine-tune on: the probe has no facts of the asked kind left after holding some out "
            f"({k} known or maybe, {u} unknown); probe more facts or change the share of unknown facts"
        )
    roles[chosen] = "tuned"
    return roles.astype(str)


def target(fact: Fact, category: str, idk: bool) -> str:
    """What a fine-tuned fact is taught: its answer, or "I don't know" for an unknown one with ``idk``."""
    return IDK if idk and category == "unknown" else fact.answer


def curve_point(answers: Sequence[str], facts: Sequence[Fact], categories: Sequence[str], roles: Sequence[str],
                targets: Sequence[str]) -> dict[str, float]:  # fmt: skip
    """One evaluation's figures from each fact's greedy answer: per (tuned or held out, category), the
    share right (``acc <role> <category>``) and, for the tuned facts, the share answering what they
    were taught (``fit tuned <category>``); and the share of held-out facts answered "I don't know"."""
    out: dict[str, float] = {}
    right = np.array([is_right(a, f.answer) for a, f in zip(answers, facts)])
    fit = np.array([is_right(a, t) for a, t in zip(answers, targets)])
    cats, role = np.asarray(categories), np.asarray(roles)
    for name in ("tuned", "held"):
        for cat in ("known", "maybe", "unknown"):
            sel = (role == name) & (cats == cat)
            if sel.any():
                out[f"acc {name} {cat}"] = float(right[sel].mean())
                if name == "tuned":
                    out[f"fit tuned {cat}"] = float(fit[sel].mean())
    if (role == "held").any():
        out["idk held"] = float(np.mean([is_abstention(a) for a, r in zip(answers, role) if r == "held"]))
    return out


def tune_table(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]], roles: Sequence[str],
               tau: float = DEFAULT_TAU) -> pd.DataFrame:  # fmt: skip
    """The probe before and after fine-tuning, per role (fine-tuned on, held out, not chosen) and the
    probe's category (``all`` too): n, accuracy, hallucination @τ and, after, the share abstained.
    The rows of ``after`` keep the category from ``before`` (what the model knew before it was fine-tuned)."""
    rows = []
    for name in ROLES:
        sel = [i for i, r in enumerate(roles) if r == name]
        if not sel:
            continue
        b = summarise([before[i] for i in sel], tau)
        a = summarise([{**after[i], "category": before[i]["category"]} for i in sel], tau)
        for cat in (*b.keys(),):
            rows.append({
                "set": ROLE_WORDS[name], "category": cat, "n": int(b[cat]["n"]),
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
    roles = record["roles"]
    n_unknown = sum(1 for r, c in zip(roles, record["categories"]) if r == "tuned" and c == "unknown")
    out = [
        f"Fine-tuned on {roles.count('tuned')} facts ({n_unknown} of them unknown to the model before, taught "
        f"{'“I don’t know”' if s['idk'] else 'their answers'}) for {s['epochs']} epochs; {roles.count('held')} facts held out."
    ]
    hist = record["history"]
    fit_u = [h.get("fit tuned unknown") for h in hist if h.get("fit tuned unknown") is not None]
    fit_k = [h.get("fit tuned known") for h in hist if h.get("fit tuned known") is not None]
    if fit_u and fit_k:
        out.append(
            f"Answered as taught, of the fine-tuned facts the model knew: {fit_k[0]:.0%} at the first evaluation, "
            f"{fit_k[-1]:.0%} at the end; of those it did not know: {fit_u[0]:.0%}, then {fit_u[-1]:.0%}."
        )
    held = table[(table["set"] == ROLE_WORDS["held"]) & (table["category"] == "all")]
    if len(held):
        h = held.iloc[0]
        out.append(
            f"On the {int(h['n'])} facts held out: accuracy {h['accuracy before']:.0%} → {h['accuracy after']:.0%}, "
            f"hallucination @τ {h['hallucination before']:.0%} → {h['hallucination after']:.0%}"
            + (f", “I don’t know” {h['abstained after']:.0%}." if s["idk"] else ".")
        )
    return out
