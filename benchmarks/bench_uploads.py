"""Upload cost against upload size: wide CSVs (BOM-prefixed, the case that once took over 10 s for
1.4 MB) and image archives whose pixels dwarf their bytes (refused from the headers).

    .venv/bin/python benchmarks/bench_uploads.py

Prints seconds per MB for CSVs 1×, 4× and 16× as wide (linear parsing keeps the ratio near 1),
and the time and peak memory to refuse a 20-image ZIP of blank 6000×6000 PNGs, against decoding
one of those images.
"""

from __future__ import annotations

import io
import resource
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.imagefiles import read_image_zip
from core.data.imports import load_upload
from core.data.tables import _column_stats, read_table
from core.errors import DataError


def wide_csv(columns: int, rows: int, *, words: bool, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    vocab = np.array(["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"])
    header = ",".join(["label"] + [f"c{i}" for i in range(columns)])
    lines = [header]
    for i in range(rows):
        cells = rng.choice(vocab, columns) if words else [f"{v:.3f}" for v in rng.random(columns)]
        lines.append(",".join([str(i % 3), *cells]))
    return ("\ufeff" + "\n".join(lines)).encode()


def main() -> int:
    print("wide CSVs (BOM, label + N columns × 10 rows): load_upload seconds")
    for words in (True, False):
        per_mb = []
        for columns in (1250, 5000, 20000):
            data = wide_csv(columns, 10, words=words)
            t = time.perf_counter()
            load_upload("wide.csv", data)
            dt = time.perf_counter() - t
            per_mb.append(dt / (len(data) / 2**20))
            print(
                f"  {'words' if words else 'numbers'} {columns:>6,} columns  {len(data) / 2**20:5.2f} MiB  {dt:6.2f} s  {per_mb[-1]:5.2f} s/MiB"
            )
        print(f"  s/MiB at 16× the width ÷ s/MiB at 1×: {per_mb[-1] / per_mb[0]:.2f} (1 = linear)")

    print("\nrole guessing's column statistics on the 20,000-column words table: one pass vs pandas calls per column")
    df, _ = read_table(wide_csv(20000, 10, words=True), "wide.csv")
    t = time.perf_counter()
    _column_stats(df)
    one_pass = time.perf_counter() - t
    t = time.perf_counter()
    for c in df.columns:  # what guess_roles did before: nunique, then dropna/astype/str.len/nunique, per column
        col = df[c]
        col.nunique(dropna=True)
        s = col.dropna().astype(str)
        _ = not s.empty and s.str.len().mean() >= 15 and s.nunique() > 0.5 * len(s)
    per_column = time.perf_counter() - t
    print(f"  one pass {one_pass:.2f} s · per-column pandas {per_column:.2f} s · {per_column / one_pass:.1f}× faster")

    blank = io.BytesIO()
    Image.new("RGB", (6000, 6000), (200, 30, 40)).save(blank, "PNG")
    one = blank.getvalue()
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as zf:
        for c in ("a", "b"):
            for i in range(10):
                zf.writestr(f"{c}/{i}.png", one)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    try:
        read_image_zip(zbuf.getvalue())
        outcome = "accepted"
    except DataError as err:
        outcome = f"refused: {str(err)[:90]}…"
    refuse_s = time.perf_counter() - t
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    t = time.perf_counter()
    with Image.open(io.BytesIO(one)) as img:
        img.load()
    decode_s = time.perf_counter() - t
    print(f"\nZIP of 20 blank 6000×6000 PNGs ({len(zbuf.getvalue()) / 2**20:.2f} MiB): {outcome}")
    print(
        f"  {refuse_s:.2f} s, peak memory grew {grown:.0f} MiB; decoding all 20 would take ≈ {20 * decode_s:.1f} s ({decode_s:.2f} s each)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
