"""Seeded fuzz of uploads: every input becomes a dataset that can be stored, or a DataError
(benchmarks/fuzz_uploads.py runs the same table generator on more inputs and reports the counts).
Token files (CoNLL-style and JSON Lines) have a generator of their own, and their datasets must also
come back from the store as they went in."""

from __future__ import annotations

from collections import Counter

import pytest

from core.data.imports import load_upload
from core.errors import DataError
from core.store.payload import read_payload, write_payload
from tests.fuzz_inputs import inputs, token_inputs

pytestmark = pytest.mark.timeout(300)


def test_two_thousand_hostile_uploads_end_in_a_dataset_or_a_data_error(tmp_path):
    outcomes = {"dataset": 0, "DataError": 0}
    failures = []
    for k, (name, raw) in enumerate(inputs(2000, seed=0)):
        try:
            ds = load_upload(name, raw).dataset
            folder = tmp_path / f"v{k}"
            folder.mkdir()
            write_payload(ds, folder)  # what the store does next: it must take what the loader made
            outcomes["dataset"] += 1
        except DataError as err:
            assert str(err).strip(), name  # a message that says something
            outcomes["DataError"] += 1
        except Exception as err:  # the finding: anything else escaped
            failures.append(f"{name}: {type(err).__name__}: {err}"[:300])
    assert not failures, f"{len(failures)} of 2000 inputs raised something else:\n" + "\n".join(failures[:10])
    assert outcomes["dataset"] > 200 and outcomes["DataError"] > 200  # the generator reaches both sides


def _same_tokens(a, b) -> bool:
    return (
        list(a.items) == list(b.items)
        and list(a.tags) == list(b.tags)
        and a.labels.tolist() == b.labels.tolist()
        and a.split.tolist() == b.split.tolist()
        and a.meta.astype(str).equals(b.meta.astype(str))
    )


def test_fifteen_hundred_hostile_token_uploads_end_in_a_stored_dataset_or_a_data_error(tmp_path, store):
    outcomes: Counter[str] = Counter()
    failures = []
    for k, (name, raw) in enumerate(token_inputs(1500, seed=0)):
        try:
            ds = load_upload(name, raw).dataset
            folder = tmp_path / f"v{k}"
            folder.mkdir()
            write_payload(ds, folder)
            if ds.modality == "tokens":
                back = read_payload(folder, name=ds.name, modality=ds.modality, class_names=ds.class_names)
                assert _same_tokens(ds, back), name
                if outcomes["tokens"] < 20:  # and through the whole store, for a few
                    assert _same_tokens(ds, store.load_dataset(store.save_dataset(ds, source=f"upload:{name}"))), name
                assert all(len(s) == len(t) and 0 < len(s) <= 512 for s, t in zip(ds.items, ds.tags)), name
            outcomes[ds.modality] += 1
        except DataError as err:
            assert str(err).strip(), name
            outcomes["DataError"] += 1
        except Exception as err:  # the finding: anything else escaped
            failures.append(f"{name}: {type(err).__name__}: {err}"[:300])
    assert not failures, f"{len(failures)} of 1500 inputs raised something else:\n" + "\n".join(failures[:10])
    assert outcomes["tokens"] > 300 and outcomes["DataError"] > 300, outcomes  # the generator reaches both sides
    assert sum(outcomes.values()) == 1500
