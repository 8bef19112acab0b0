"""A lab corpus as a stored version, like any dataset.

The version's rows are the corpus's questions — one per person and attribute, a text item whose
label is the answer word (class names: ``core.lab.train.answer_words``, every value and
``unknown``) — with the meta columns ``person``, ``attribute``, ``exposure`` and ``held_out``, so
the Data page browses them and slices them by exposure. People the corpus names are in the train
split, held-out people in test; a lab run chooses whom it asks itself. The corpus is a function of
its settings, kept in the version's params (``lab_corpus``) with its figures (monofact rate,
Good–Turing estimate, biographies, words); ``corpus_of`` makes it again. Torch-free.
"""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

from core.data.dataset import Dataset
from core.errors import DataError
from core.lab.corpus import Corpus, CorpusSpec, answer_words, good_turing, make_corpus, monofact_rate
from core.store import Store

KIND = "lab corpus"


def corpus_dataset(corpus: Corpus, name: str = "") -> Dataset:
    """The corpus's questions as a text dataset (see the module's docstring)."""
    classes = answer_words(corpus)
    index = {w: i for i, w in enumerate(classes)}
    rows = corpus.questions()
    person = np.array([p for p, *_ in rows], dtype=np.int64)
    return Dataset(
        name=name or f"Lab corpus · {len(corpus.people):,} people (seed {corpus.spec.seed})",
        modality="text",
        items=np.array([q for _, _, q, _ in rows], dtype=object),
        labels=np.array([index[ans] for *_, ans in rows], dtype=np.int64),
        class_names=classes,
        split=np.where(corpus.exposure[person] > 0, 0, 2).astype(np.int8),
        meta=pd.DataFrame(
            {
                "person": [corpus.people[p] for p in person],
                "attribute": [a for _, a, _, _ in rows],
                "exposure": corpus.exposure[person],
                "held_out": corpus.exposure[person] == 0,
            }
        ),
    )


def corpus_params(corpus: Corpus) -> dict:
    return {
        "lab_corpus": corpus.spec.to_dict(),
        "monofact_rate": monofact_rate(corpus),
        "good_turing": good_turing(corpus),
        "biographies": len(corpus.bios),
        "words": corpus.n_words(),
    }


def save_corpus(store: Store, spec: CorpusSpec, name: str = "") -> int:
    """Make the corpus and store it as a new dataset's version; returns the version id."""
    corpus = make_corpus(spec)
    ds = corpus_dataset(corpus, name)
    return store.save_dataset(ds, source=f"lab:{uuid.uuid4().hex[:12]}", kind=KIND, note=ds.name, params=corpus_params(corpus))


def is_lab_version(params: dict) -> bool:
    return isinstance(params.get("lab_corpus"), dict)


def corpus_of(store: Store, version_id: int) -> Corpus:
    """The corpus a lab version was made from (made again from its settings)."""
    info = store.version(version_id)
    if not is_lab_version(info.params):
        raise DataError(f"version {version_id} ({info.label}) is not a lab corpus: make one on the Lab page")
    return make_corpus(CorpusSpec.from_dict(info.params["lab_corpus"]))


def lab_versions(store: Store) -> list:
    """Every stored lab corpus, newest first."""
    return sorted((v for v in store.versions() if is_lab_version(v.params)), key=lambda v: -v.id)
