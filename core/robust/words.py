"""A word-substitution attack on text with offline WordNet synonyms (torch-free: it only calls a
probability function).

Per text: each word's importance is how much deleting it lowers the true class's probability
(one batch of texts, a word left out of each); words are tried in that order, each replaced by the
synonym (``core.mitigate.language.synonyms``: the two most frequent WordNet senses, no function
words) that lowers the true class most, kept only when it lowers it; the attack stops once the
answer changes or ``max_words`` words are changed. In the spirit of TextFooler (Jin et al. 2020)
without its counter-fitted embeddings, which would be a download.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Probs = Callable[[list[str]], np.ndarray]  # texts → (n, K) class probabilities
Synonyms = Callable[[str], tuple[str, ...]]
WORD = re.compile(r"[A-Za-z]+")
MAX_CANDIDATES = 8


@dataclass(frozen=True)
class WordAttack:
    """One text's attack: the text after it, the words changed (position in the text's words, old,
    new) in the order they were changed, and the true class's probability before and after."""

    text: str
    changed: list[tuple[int, str, str]]
    p_before: float
    p_after: float
    flipped: bool


def _words(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in WORD.finditer(text)]


def _replace(text: str, span: tuple[int, int], new: str) -> str:
    return text[: span[0]] + new + text[span[1] :]


def attack_text(text: str, label: int, probs: Probs, synonyms: Synonyms, *, max_words: int = 3) -> WordAttack:
    """Attack ``text`` of class position ``label`` (see the module's docstring)."""
    p0 = probs([text])[0]
    if int(np.argmax(p0)) != label:
        return WordAttack(text, [], float(p0[label]), float(p0[label]), False)
    spans = _words(text)
    if not spans:
        return WordAttack(text, [], float(p0[label]), float(p0[label]), False)
    deleted = probs([_replace(text, s, "") for s in spans])[:, label]
    order = np.argsort(deleted, kind="stable")  # the word whose deletion lowers the class most first
    current, p_now = text, float(p0[label])
    changed: list[tuple[int, str, str]] = []
    for w in order.tolist():
        if len(changed) >= max_words:
            break
        spans_now = _words(current)
        if w >= len(spans_now):
            continue
        old = current[spans_now[w][0] : spans_now[w][1]]
        cands = [c for c in synonyms(old) if c.lower() != old.lower()][:MAX_CANDIDATES]
        if not cands:
            continue
        trials = [_replace(current, spans_now[w], c) for c in cands]
        p = probs(trials)
        best = int(np.argmin(p[:, label]))
        if p[best, label] >= p_now:
            continue
        current, p_now = trials[best], float(p[best, label])
        changed.append((w, old, cands[best]))
        if int(np.argmax(p[best])) != label:
            return WordAttack(current, changed, float(p0[label]), p_now, True)
    return WordAttack(current, changed, float(p0[label]), p_now, False)
