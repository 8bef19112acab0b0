"""The lab's real-model probe, torch-free: the fact set, the prompts, and what the answers say.

The fact set (``facts.json``, written by ``scripts/make_lab_facts.py`` from two registry packages
with clear licences) holds three families: a country's capital (countryinfo, MIT), an element's
chemical symbol and its atomic number (periodictable, public domain).

A probe asks a language model each chosen fact in a few-shot prompt (``shots`` other facts of the
same family, answered, before the question) — the SliCK protocol of Gekhman et al. (2024):

- ``greedy_prompts`` prompts per fact, each with different exemplars, answered greedily;
- ``samples`` answers sampled at ``temperature`` from the first prompt;
- **known**: every greedy answer is right; **maybe**: some greedy or sampled answer is right;
  **unknown**: none is (Gekhman et al.'s HighlyKnown / MaybeKnown + WeaklyKnown / Unknown).

The model's **answer** to a fact is the first prompt's greedy answer; its **confidence** is the share
of the samples that give the same answer (self-consistency: the probability of the answer's tokens
is kept too, but a word spelled in several token sequences splits it); a **hallucination** is a
wrong answer with confidence ≥ τ, ECE as for a classifier (``core.metrics``' ``*_from_conf``). ``summarise`` gives
them per category and over all facts; ``findings`` says it in words.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.atomic import atomic_write_bytes
from core.errors import DataError
from core.lab.corpus import known_fields
from core.metrics import DEFAULT_TAU, ece_from_conf, hallucination_from_conf

FACTS_FILE = Path(__file__).with_name("facts.json")
QUESTIONS = {
    "capital": "What is the capital of {subject}?",
    "symbol": "What is the chemical symbol of {subject}?",
    "number": "What is the atomic number of {subject}?",
}
FAMILY_WORDS = {"capital": "capitals", "symbol": "element symbols", "number": "atomic numbers"}
CATEGORIES = ("known", "maybe", "unknown")
IDK = "I don't know"  # the abstention a fine-tuned model may be taught (``core.lab.finetune``)


@dataclass(frozen=True)
class Fact:
    family: str
    subject: str
    answer: str

    @property
    def question(self) -> str:
        return QUESTIONS[self.family].format(subject=self.subject)


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, str], tuple[Fact, ...]]:
    doc = json.loads(FACTS_FILE.read_text(encoding="utf-8"))
    return dict(doc["sources"]), tuple(Fact(**f) for f in doc["facts"])


def load_facts(families: Sequence[str] | None = None) -> list[Fact]:
    """The shipped facts of ``families`` (all by default), in the file's order."""
    wanted = set(QUESTIONS if families is None else families)
    return [f for f in _load()[1] if f.family in wanted]


def sources() -> dict[str, str]:
    """Family → where its facts come from and under which licence."""
    return _load()[0]


@dataclass(frozen=True)
class ProbeSettings:
    n_facts: int = 60  # asked, in equal shares per family
    families: tuple[str, ...] = ("capital", "symbol", "number")
    shots: int = 4
    greedy_prompts: int = 3
    samples: int = 6
    temperature: float = 0.5
    max_new_tokens: int = 8
    tau: float = DEFAULT_TAU
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "families", tuple(self.families))
        for problem in self.problems():
            raise DataError(problem)

    def problems(self) -> list[str]:
        out = []
        bad = [f for f in self.families if f not in QUESTIONS]
        if bad or not self.families:
            out.append(f"fact families must be some of {', '.join(QUESTIONS)} (got {', '.join(bad) or 'none'})")
        if not 1 <= self.n_facts <= 1000:
            out.append(f"facts asked must be between 1 and 1,000 (got {self.n_facts})")
        if not 0 <= self.shots <= 8:
            out.append(f"examples per prompt must be between 0 and 8 (got {self.shots})")
        if not 1 <= self.greedy_prompts <= 8 or not 0 <= self.samples <= 32:
            out.append("greedy prompts must be 1–8 and samples 0–32")
        if not 0 < self.temperature <= 2:
            out.append(f"the sampling temperature must be in (0, 2] (got {self.temperature:g})")
        if not 1 <= self.max_new_tokens <= 32:
            out.append(f"answer tokens must be between 1 and 32 (got {self.max_new_tokens})")
        if not 0 < self.tau <= 1:
            out.append(f"τ must be in (0, 1] (got {self.tau:g})")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["families"] = list(self.families)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProbeSettings:
        return known_fields(cls, d, "probe settings")


def choose(settings: ProbeSettings) -> list[Fact]:
    """``n_facts`` facts in equal shares per family (the first families take the remainder), drawn by the seed."""
    rng = np.random.default_rng(settings.seed)
    out: list[Fact] = []
    k = len(settings.families)
    for i, family in enumerate(settings.families):
        pool = load_facts([family])
        take = min(len(pool), settings.n_facts // k + (i < settings.n_facts % k))
        out += [pool[j] for j in np.sort(rng.choice(len(pool), size=take, replace=False))]
    return out


def prompt(fact: Fact, exemplars: Sequence[Fact]) -> str:
    """A few-shot prompt: each exemplar answered, then the question, ending where the answer begins."""
    if any(e.family != fact.family or e == fact for e in exemplars):
        raise DataError("exemplars must be other facts of the asked fact's family")
    lines = [f"Q: {e.question}\nA: {e.answer}\n" for e in exemplars]
    return "".join(lines) + f"Q: {fact.question}\nA:"


def prompts(fact: Fact, settings: ProbeSettings, rng: np.random.Generator) -> list[str]:
    """``greedy_prompts`` prompts for ``fact``, each with its own ``shots`` exemplars of the same family."""
    others = [f for f in load_facts([fact.family]) if f != fact]
    return [
        prompt(fact, [others[j] for j in rng.choice(len(others), size=settings.shots, replace=False)])
        for _ in range(settings.greedy_prompts)
    ]


def normalise(text: str) -> str:
    """The answer part of a generation, compared loosely: its first line, accents and case folded,
    punctuation and spaces dropped."""
    first = text.strip().split("\n", 1)[0]
    folded = unicodedata.normalize("NFKD", first).encode("ascii", "ignore").decode().casefold()
    return re.sub(r"[^a-z0-9]", "", folded)


def is_right(generated: str, answer: str) -> bool:
    return normalise(generated) == normalise(answer) != ""


def is_abstention(generated: str) -> bool:
    """The answer says "I don't know" (compared as ``normalise`` does)."""
    return normalise(generated) == normalise(IDK)


def categorise(greedy_right: Sequence[bool], sampled_right: Sequence[bool]) -> str:
    """SliCK's categories from the greedy answers and the samples of one fact."""
    if greedy_right and all(greedy_right):
        return "known"
    return "maybe" if any(greedy_right) or any(sampled_right) else "unknown"


def summarise(rows: Sequence[Mapping[str, Any]], tau: float = DEFAULT_TAU) -> dict[str, dict[str, float]]:
    """Per category and over ``all``: n, share of the facts, accuracy of the answer, mean confidence,
    hallucination @τ (wrong with confidence ≥ τ; an "I don't know" is an abstention, never a
    hallucination), the share abstained, and ECE. Each row: ``category``, ``right``, ``confidence``,
    ``answer``."""
    out: dict[str, dict[str, float]] = {}
    total = len(rows)
    for name in (*CATEGORIES, "all"):
        sel = [r for r in rows if name == "all" or r["category"] == name]
        if not sel:
            continue
        conf = np.array([float(r["confidence"]) for r in sel])
        right = np.array([bool(r["right"]) for r in sel])
        abstained = np.array([is_abstention(str(r.get("answer", ""))) for r in sel])
        out[name] = {
            "n": float(len(sel)),
            "share": len(sel) / total,
            "accuracy": float(right.mean()),
            "confidence": float(conf.mean()),
            "hallucination": hallucination_from_conf(np.where(abstained, 0.0, conf), right, tau=tau),
            "abstained": float(abstained.mean()),
            "ece": ece_from_conf(conf, right),
        }
    return out


def by_family(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Family → share of its facts in each category."""
    out: dict[str, dict[str, float]] = {}
    for fam in dict.fromkeys(r["family"] for r in rows):
        sel = [r["category"] for r in rows if r["family"] == fam]
        out[fam] = {c: sel.count(c) / len(sel) for c in CATEGORIES}
    return out


def findings(summary: Mapping[str, Mapping[str, float]], tau: float = DEFAULT_TAU) -> list[str]:
    """What a probe shows, in words."""
    if "all" not in summary:
        return []
    a = summary["all"]
    out = [
        f"Of {a['n']:.0f} facts the model knows {summary.get('known', {}).get('share', 0):.0%}, "
        f"half-knows {summary.get('maybe', {}).get('share', 0):.0%} and does not know {summary.get('unknown', {}).get('share', 0):.0%}."
    ]
    unk = summary.get("unknown")
    if unk:
        out.append(
            f"On the facts it does not know it still answers, with mean confidence {unk['confidence']:.2f}; "
            f"{unk['hallucination']:.0%} of them are confident (≥ {tau:g}) and wrong — hallucinations."
        )
    out.append(f"Over all facts: accuracy {a['accuracy']:.0%}, hallucination @τ {a['hallucination']:.0%}, ECE {a['ece']:.3f}.")
    return out


PROBES_DIR = "lab_probes"


TUNES_DIR = "lab_tunes"


def save_record(home: str | Path, record: Mapping[str, Any], *, folder: str = PROBES_DIR, prefix: str = "probe") -> dict[str, Any]:
    """Store a record (a probe's, or a fine-tuning's under ``TUNES_DIR``) under ``home`` with the next
    id and the time; returns it with both."""
    where = Path(home) / folder
    where.mkdir(parents=True, exist_ok=True)
    ids = [int(p.stem.split("-")[1]) for p in where.glob(f"{prefix}-*.json") if p.stem.split("-")[1].isdigit()]
    out = {**record, "id": max(ids, default=0) + 1, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write_bytes(where / f"{prefix}-{out['id']}.json", json.dumps(out, ensure_ascii=False).encode("utf-8"))
    return out


def records(home: str | Path, *, folder: str = PROBES_DIR, prefix: str = "probe") -> list[dict[str, Any]]:
    """Every stored record of a kind under ``home``, the newest first (a file that cannot be read is skipped)."""
    out = []
    for p in (Path(home) / folder).glob(f"{prefix}-*.json"):
        try:
            out.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return sorted(out, key=lambda r: -int(r.get("id", 0)))


def save_probe(home: str | Path, record: Mapping[str, Any]) -> dict[str, Any]:
    return save_record(home, record)


def probes(home: str | Path) -> list[dict[str, Any]]:
    """Every stored probe under ``home``, the newest first."""
    return records(home)


def probe_facts_of(record: Mapping[str, Any]) -> list[Fact]:
    """The facts a stored probe asked, in its order."""
    return [Fact(r["family"], r["subject"], r["truth"]) for r in record["rows"]]


def rows_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A probe's facts as a table for the page and the chart."""
    cols = ["family", "question", "truth", "answer", "confidence", "probability", "right", "category", "greedy_right", "sampled_right"]
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)


def summary_table(summary: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """``summarise``'s figures as rows: known, maybe, unknown, all."""
    return pd.DataFrame([{"category": k, **v} for k, v in summary.items()])
