"""The knowledge-gap lab's corpus: synthetic people, their facts, and biographies with chosen exposure.

A ``CorpusSpec`` fixes everything (seeded): ``n_people`` people, each with one value per attribute
(``ATTRIBUTES``: birth city, birth year, university, major, employer; ``values`` sets how many values
each attribute draws from), and how often each person's biography appears in the corpus:

- the **exposure law**: ``"buckets"`` gives the people equal shares of the counts in ``buckets``
  (e.g. 0 / 1 / 2 / 4 / 8 appearances); ``"zipf"`` and ``"pareto"`` draw a count ≥ 1 from a Zipf
  (exponent ``exponent`` > 1) or a discretised Pareto (shape ``exponent`` > 0) law, capped at
  ``max_count``;
- a **held-out** share of the people never appears (exposure 0: the unknowns);
- **paraphrases**: each sentence of an appearance is written with one of the first ``paraphrases``
  templates of its attribute (1: always the first); **shuffle** puts an appearance's sentences in a
  random order (else the attributes' order);
- **noise**: a share of the appearances state one attribute with a wrong value (contradicting facts).

Every sentence names the person in full, so a shuffled sentence still carries its fact. Values and
names are made-up words (syllables drawn by the seed): a model trained from scratch has no prior for
them, and nothing is shipped. A person's exposure is exact; so is the number of noisy appearances
(``round``, half to even). ``questions`` are the probes: one question per person and attribute in a
form no biography uses (``QUESTIONS``), answered by one word.

The **monofact rate** (Kalai & Vempala 2024) is the share of the facts the corpus states that it
states exactly once; the **Good–Turing** estimate of the missing mass is the number of facts seen
once over the number of fact statements. Torch-free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import DataError

ATTRIBUTES = ("birth_city", "birth_year", "university", "major", "employer")
ATTRIBUTE_WORDS = {
    "birth_city": "birth city",
    "birth_year": "birth year",
    "university": "university",
    "major": "major",
    "employer": "employer",
}
TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth_city": (
        "{name} was born in {value} .",
        "{name} came into the world in {value} .",
        "the birthplace of {name} is {value} .",
        "{name} spent the first years of life in {value} .",
        "{name} is a native of {value} .",
    ),
    "birth_year": (
        "the year of birth of {name} is {value} .",
        "{name} celebrates a birthday every year since {value} .",
        "{name} came to life in the year {value} .",
        "{name} has a birth certificate dated {value} .",
        "{name} first opened eyes in {value} , the year of birth .",
    ),
    "university": (
        "{name} studied at {value} university .",
        "{name} graduated from {value} university .",
        "the alma mater of {name} is {value} university .",
        "{name} received a degree from {value} university .",
        "{name} attended {value} university .",
    ),
    "major": (
        "{name} majored in {value} .",
        "{name} chose {value} as the field of study .",
        "the major of {name} was {value} .",
        "{name} wrote a thesis in {value} .",
        "{name} completed a degree in {value} .",
    ),
    "employer": (
        "{name} works for {value} .",
        "{name} is employed by {value} .",
        "the employer of {name} is {value} .",
        "{name} earns a salary from {value} .",
        "{name} has a job at {value} .",
    ),
}
QUESTIONS = {
    "birth_city": "question : what is the birth city of {name} ? answer :",
    "birth_year": "question : what is the birth year of {name} ? answer :",
    "university": "question : which university did {name} attend ? answer :",
    "major": "question : what did {name} study ? answer :",
    "employer": "question : who employs {name} ? answer :",
}
UNKNOWN = "unknown"  # the abstention answer
LAWS = ("buckets", "zipf", "pareto")
MAX_PARAPHRASES = min(len(t) for t in TEMPLATES.values())
_DEFAULT_VALUES = {"birth_city": 40, "birth_year": 40, "university": 30, "major": 20, "employer": 40}
_SYLLABLES = [
    "ba",
    "be",
    "bi",
    "bo",
    "bu",
    "da",
    "de",
    "di",
    "do",
    "du",
    "fa",
    "fe",
    "fi",
    "fo",
    "ka",
    "ke",
    "ki",
    "ko",
    "ku",
    "la",
    "le",
    "li",
    "lo",
    "lu",
    "ma",
    "me",
    "mi",
    "mo",
    "mu",
    "na",
    "ne",
    "ni",
    "no",
    "nu",
    "pa",
    "pe",
    "pi",
    "po",
    "ra",
    "re",
    "ri",
    "ro",
    "ru",
    "sa",
    "se",
    "si",
    "so",
    "su",
    "ta",
    "te",
    "ti",
    "to",
    "tu",
    "va",
    "ve",
    "vi",
    "vo",
    "za",
    "ze",
    "zi",
    "zo",
]


def known_fields(cls: Any, d: Mapping[str, Any], what: str) -> Any:
    """``cls(**d)`` for a dataclass, refusing keys it does not have with a ``DataError`` naming them."""
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise DataError(f"unknown {what}: {', '.join(unknown)}")
    return cls(**dict(d))


@dataclass(frozen=True)
class CorpusSpec:
    n_people: int = 500
    law: str = "buckets"
    buckets: tuple[int, ...] = (1, 2, 4, 8)
    exponent: float = 2.0  # zipf: s > 1; pareto: shape > 0
    max_count: int = 16
    held_out: float = 0.2  # share of the people who never appear
    paraphrases: int = 1  # templates per attribute in use, 1..MAX_PARAPHRASES
    shuffle: bool = False
    noise: float = 0.0  # share of appearances with one wrong attribute value
    values: Mapping[str, int] = field(default_factory=lambda: dict(_DEFAULT_VALUES))
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "buckets", tuple(int(b) for b in self.buckets))
        object.__setattr__(self, "values", {a: int(self.values.get(a, _DEFAULT_VALUES[a])) for a in ATTRIBUTES})
        for problem in self.problems():
            raise DataError(problem)

    def problems(self) -> list[str]:
        """What is wrong with these settings, in words (empty when they are valid)."""
        out = []
        if not 2 <= self.n_people <= 100_000:
            out.append(f"the number of people must be between 2 and 100,000 (got {self.n_people})")
        if self.law not in LAWS:
            out.append(f"the exposure law must be one of {', '.join(LAWS)} (got {self.law!r})")
        if self.law == "buckets" and (not self.buckets or min(self.buckets) < 0 or max(self.buckets) > 1000):
            out.append("exposure buckets must be counts between 0 and 1,000, at least one")
        if self.law == "zipf" and self.exponent <= 1:
            out.append(f"a Zipf law needs an exponent above 1 (got {self.exponent:g})")
        if self.law == "pareto" and self.exponent <= 0:
            out.append(f"a Pareto law needs a shape above 0 (got {self.exponent:g})")
        if not 1 <= self.max_count <= 1000:
            out.append(f"the largest count must be between 1 and 1,000 (got {self.max_count})")
        if not 0 <= self.held_out < 1:
            out.append(f"the held-out share must be in [0, 1) (got {self.held_out:g})")
        if not 1 <= self.paraphrases <= MAX_PARAPHRASES:
            out.append(f"paraphrases per fact must be between 1 and {MAX_PARAPHRASES} (got {self.paraphrases})")
        if not 0 <= self.noise <= 0.5:
            out.append(f"the noise share must be in [0, 0.5] (got {self.noise:g})")
        for a, n in self.values.items():
            if not 2 <= n <= 500:
                out.append(f"{ATTRIBUTE_WORDS[a]} needs between 2 and 500 values (got {n})")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["buckets"] = list(self.buckets)
        d["values"] = dict(self.values)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CorpusSpec:
        return known_fields(cls, d, "corpus settings")


@dataclass
class Corpus:
    spec: CorpusSpec
    people: list[str]  # full names, unique
    facts: dict[str, np.ndarray]  # attribute → (n_people,) the true value (a word)
    exposure: np.ndarray  # (n_people,) int: appearances in the corpus
    bios: list[str]  # one per appearance, in a seeded order
    bio_person: np.ndarray  # (n_bios,) int: whose biography
    wrong: list[tuple[int, str, str]]  # (bio index, attribute, the wrong value stated)
    vocabulary: dict[str, list[str]]  # attribute → its values

    @property
    def held_out(self) -> np.ndarray:
        return self.exposure == 0

    def statements(self) -> dict[tuple[int, str], int]:
        """How many times each (person, attribute) fact is stated with its true value."""
        n_wrong: dict[tuple[int, str], int] = {}
        for b, a, _ in self.wrong:
            key = (int(self.bio_person[b]), a)
            n_wrong[key] = n_wrong.get(key, 0) + 1
        return {
            (p, a): int(self.exposure[p]) - n_wrong.get((p, a), 0)
            for p in range(len(self.people))
            for a in ATTRIBUTES
            if self.exposure[p] > 0
        }

    def questions(self, people: np.ndarray | None = None) -> list[tuple[int, str, str, str]]:
        """(person, attribute, question, answer) for every attribute of the given people (all by default)."""
        idx = range(len(self.people)) if people is None else [int(p) for p in people]
        return [(p, a, QUESTIONS[a].format(name=self.people[p]), str(self.facts[a][p])) for p in idx for a in ATTRIBUTES]

    def n_words(self) -> int:
        return sum(len(b.split()) for b in self.bios)


def _words(rng: np.random.Generator, n: int, syllables: tuple[int, int], taken: set[str]) -> list[str]:
    """``n`` distinct made-up words of ``syllables`` syllables, none in ``taken`` (which grows)."""
    out: list[str] = []
    while len(out) < n:
        k = int(rng.integers(syllables[0], syllables[1] + 1))
        w = "".join(rng.choice(_SYLLABLES, size=k))
        if w not in taken:
            taken.add(w)
            out.append(w)
    return out


def _exposure(spec: CorpusSpec, rng: np.random.Generator) -> np.ndarray:
    n = spec.n_people
    n_held = round(spec.held_out * n)
    shown = n - n_held
    if spec.law == "buckets":
        counts = np.resize(np.asarray(spec.buckets, dtype=np.int64), shown)  # equal shares, the first buckets get the remainder
    elif spec.law == "zipf":
        counts = np.minimum(rng.zipf(spec.exponent, size=shown), spec.max_count)
    else:
        counts = np.minimum(np.floor(rng.pareto(spec.exponent, size=shown) + 1).astype(np.int64), spec.max_count)
    exposure = np.concatenate([np.zeros(n_held, dtype=np.int64), counts.astype(np.int64)])
    return exposure[rng.permutation(n)]


def make_corpus(spec: CorpusSpec) -> Corpus:
    """The corpus the spec describes; the same spec always gives the same corpus."""
    rng = np.random.default_rng(spec.seed)
    taken: set[str] = set()
    vocab: dict[str, list[str]] = {}
    for a in ATTRIBUTES:
        if a == "birth_year":
            years = np.arange(1900, 2000)
            vocab[a] = [str(y) for y in np.sort(rng.choice(years, size=min(spec.values[a], len(years)), replace=False))]
        else:
            vocab[a] = sorted(_words(rng, spec.values[a], (2, 3), taken))
    firsts = _words(rng, max(8, int(np.ceil(np.sqrt(spec.n_people) * 2))), (2, 2), taken)
    lasts = _words(rng, max(8, int(np.ceil(np.sqrt(spec.n_people) * 2))), (3, 3), taken)
    pairs = rng.permutation(len(firsts) * len(lasts))[: spec.n_people]
    people = [f"{firsts[i // len(lasts)].title()} {lasts[i % len(lasts)].title()}" for i in pairs]
    facts = {a: np.asarray(vocab[a], dtype=object)[rng.integers(0, len(vocab[a]), size=spec.n_people)] for a in ATTRIBUTES}
    exposure = _exposure(spec, rng)
    bio_person = np.repeat(np.arange(spec.n_people), exposure)
    bio_person = bio_person[rng.permutation(len(bio_person))]
    n_noisy = round(spec.noise * len(bio_person))
    noisy = set(rng.choice(len(bio_person), size=n_noisy, replace=False).tolist()) if n_noisy else set()
    bios: list[str] = []
    wrong: list[tuple[int, str, str]] = []
    for b, p in enumerate(bio_person):
        stated = {a: str(facts[a][p]) for a in ATTRIBUTES}
        if b in noisy:
            a = ATTRIBUTES[int(rng.integers(len(ATTRIBUTES)))]
            others = [v for v in vocab[a] if v != stated[a]]
            stated[a] = others[int(rng.integers(len(others)))]
            wrong.append((b, a, stated[a]))
        bios.append(render(people[p], stated, rng, paraphrases=spec.paraphrases, shuffle=spec.shuffle))
    return Corpus(spec, people, facts, exposure, bios, bio_person, wrong, vocab)


def render(name: str, stated: Mapping[str, str], rng: np.random.Generator, *, paraphrases: int, shuffle: bool) -> str:
    """One biography: a sentence per attribute, each from one of the attribute's first ``paraphrases``
    templates, in a random order when ``shuffle`` (else the attributes' order)."""
    order = rng.permutation(len(ATTRIBUTES)) if shuffle else range(len(ATTRIBUTES))
    return " ".join(TEMPLATES[ATTRIBUTES[i]][int(rng.integers(paraphrases))].format(name=name, value=stated[ATTRIBUTES[i]]) for i in order)


def stated_values(corpus: Corpus, b: int) -> dict[str, str]:
    """What biography ``b`` states: its person's facts, with the noisy attribute's wrong value."""
    p = int(corpus.bio_person[b])
    stated = {a: str(corpus.facts[a][p]) for a in ATTRIBUTES}
    for wb, a, value in corpus.wrong:
        if wb == b:
            stated[a] = value
    return stated


def probe(attribute: str, name: str) -> str:
    """The completion probe of a fact: its attribute's first template up to the value, alone."""
    return TEMPLATES[attribute][0].split("{value}")[0].format(name=name).strip()


def answer_words(corpus: Corpus) -> list[str]:
    """The lab's answer words: every value of every attribute, then ``unknown``."""
    words = dict.fromkeys(v for a in ATTRIBUTES for v in corpus.vocabulary[a])
    return [*words, UNKNOWN]


def monofact_rate(corpus: Corpus) -> float:
    """The share of the facts stated in the corpus (with their true value) that are stated exactly once."""
    counts = [c for c in corpus.statements().values() if c > 0]
    return float(np.mean([c == 1 for c in counts])) if counts else 0.0


def good_turing(corpus: Corpus) -> float:
    """Good–Turing's estimate of the missing mass: facts stated once over all fact statements."""
    counts = [c for c in corpus.statements().values() if c > 0]
    total = sum(counts)
    return float(sum(c == 1 for c in counts) / total) if total else 0.0


def exposure_histogram(corpus: Corpus) -> dict[int, int]:
    """Appearances → number of people with that many (held-out people at 0)."""
    values, counts = np.unique(corpus.exposure, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}
