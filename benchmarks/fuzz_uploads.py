"""Fuzz the upload loaders with many hostile uploads (the generators of tests/fuzz_inputs.py: tables,
and with ``--tokens`` CoNLL-style and JSON Lines token files) and count the outcomes: a stored
dataset, a DataError, or anything else (a defect).

    .venv/bin/python benchmarks/fuzz_uploads.py --n 10000 --seed 1
    .venv/bin/python benchmarks/fuzz_uploads.py --n 10000 --seed 1 --tokens
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.imports import load_upload
from core.errors import DataError
from core.store.payload import write_payload
from tests.fuzz_inputs import inputs, token_inputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tokens", action="store_true", help="token files (CoNLL-style, JSON Lines) instead of tables")
    args = parser.parse_args()
    generate = token_inputs if args.tokens else inputs
    counts: collections.Counter[str] = collections.Counter()
    by_format: collections.Counter[tuple[str, str]] = collections.Counter()
    others: list[str] = []
    slowest = (0.0, "")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, raw) in enumerate(generate(args.n, seed=args.seed)):
            t = time.perf_counter()
            try:
                ds = load_upload(name, raw).dataset
                folder = Path(tmp) / f"v{k}"
                folder.mkdir()
                write_payload(ds, folder)
                outcome = "dataset"
            except DataError:
                outcome = "DataError"
            except Exception as err:  # counted: this is what the fuzz looks for
                outcome = "other"
                others.append(f"{name}: {type(err).__name__}: {err}"[:200])
            counts[outcome] += 1
            by_format[(Path(name).suffix, outcome)] += 1
            slowest = max(slowest, (time.perf_counter() - t, name))
    total = time.perf_counter() - t0
    print(f"{args.n:,} inputs (seed {args.seed}) in {total:.1f} s; slowest {slowest[0] * 1000:.0f} ms ({slowest[1]})")
    for outcome in ("dataset", "DataError", "other"):
        print(f"  {outcome}: {counts[outcome]:,}")
    for fmt in sorted({f for f, _ in by_format}):
        print(f"  {fmt}: " + ", ".join(f"{o} {by_format[(fmt, o)]:,}" for o in ("dataset", "DataError", "other")))
    for line in others[:20]:
        print("  !", line)
    return 1 if counts["other"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
