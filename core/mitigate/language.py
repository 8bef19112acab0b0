"""Language resources for text augmentation, both offline: WordNet synonyms (the verified asset,
read by NLTK from the project's own folder) and Apertium's rule-based English ↔ Spanish
translation (the Debian packages ``apertium`` and ``apertium-eng-spa``, when installed)."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from functools import lru_cache
from typing import Any

from core.data import assets

# function words never replaced by a synonym (their "synonyms" in WordNet are other senses)
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "so",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "him",
        "his",
        "she",
        "her",
        "it",
        "its",
        "they",
        "them",
        "their",
        "this",
        "that",
        "these",
        "those",
        "not",
        "no",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "each",
        "some",
        "such",
        "than",
        "too",
        "very",
        "can",
        "will",
        "would",
        "should",
        "could",
        "may",
        "might",
        "must",
        "just",
    ]
)
APERTIUM_PAIRS = ("eng-spa", "spa-eng")


def wordnet_ready() -> bool:
    return assets.is_ready("wordnet")


@lru_cache(maxsize=1)
def _wordnet() -> Any:
    """NLTK's reader on the WordNet asset (about 3 s to open; kept for the process)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = assets.asset_path("wordnet") / "corpora" / "wordnet"
    base = str(root.parent.parent)
    if base not in nltk.data.path:
        nltk.data.path.insert(0, base)  # NLTK reads only from its data path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": not needed
        return WordNetCorpusReader(str(root), None)


@lru_cache(maxsize=50_000)
def synonyms(word: str) -> tuple[str, ...]:
    """Synonyms of ``word`` from its two most frequent senses (rarer senses drift: "was" →
    "Washington"); none for function words."""
    w = word.lower()
    if w in STOP_WORDS or not w.isalpha():
        return ()
    found: list[str] = []
    for synset in _wordnet().synsets(w)[:2]:
        for lemma in synset.lemma_names():
            candidate = lemma.replace("_", " ")
            if candidate.lower() != w and candidate not in found:
                found.append(candidate)
    return tuple(found)


@lru_cache(maxsize=1)
def apertium_ready() -> bool:
    """Whether Apertium and its English ↔ Spanish pairs are installed."""
    if shutil.which("apertium") is None:
        return False
    try:
        modes = subprocess.run(["apertium", "-l"], capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return False
    return all(pair in modes for pair in APERTIUM_PAIRS)


def back_translate(texts: list[str]) -> list[str]:
    """English → Spanish → English with Apertium, one text per line (line breaks inside a text
    become spaces); unknown-word marks are left out (``-u``)."""
    if not texts:
        return []
    lines = "\n".join(" ".join(str(t).split()) for t in texts)
    spanish = _apertium("eng-spa", lines)
    english = _apertium("spa-eng", spanish).split("\n")
    if len(english) < len(texts):
        raise RuntimeError(f"Apertium returned {len(english)} lines for {len(texts)} texts")
    return [" ".join(line.split()) or original for line, original in zip(english, texts)]


def _apertium(pair: str, text: str) -> str:
    done = subprocess.run(["apertium", "-u", pair], input=text, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"apertium {pair} failed: {done.stderr.strip()[:300]}")
    return done.stdout.rstrip("\n")
