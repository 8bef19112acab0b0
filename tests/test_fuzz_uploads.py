"""Seeded fuzz of table uploads: every input becomes a dataset that can be stored, or a DataError
(benchmarks/fuzz_uploads.py runs the same generator on more inputs and reports the counts)."""

from __future__ import annotations

import pytest

from core.data.imports import load_upload
from core.errors import DataError
from core.store.payload import write_payload
from tests.fuzz_inputs import inputs

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
