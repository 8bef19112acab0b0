"""Write ``core/lab/facts.json``: the fact set the lab's real-model probe asks SmolLM2.

    .venv/bin/python scripts/make_lab_facts.py countryinfo-1.0.1-py3-none-any.whl periodictable-2.1.0-py3-none-any.whl

Reads two archives from the package registry (``pip download --no-deps countryinfo==1.0.1
periodictable==2.1.0``), checks their SHA-256 against the pins below, and writes three families:

- ``capital``: every country in countryinfo's ISO set with one stated capital (MIT licence,
  © 2018 Porimol Chandro);
- ``symbol`` and ``number``: every element's chemical symbol and atomic number (periodictable's
  element table, public domain).

The file is committed; this script documents where it came from and rebuilds it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path

PINS = {
    "countryinfo-1.0.1-py3-none-any.whl": "b02f6f534f0a3b9cdc73fba7e08f247e39826acfa54bf080f8e4eba812066350",
    "periodictable-2.1.0-py3-none-any.whl": "e9155d2bf5ac10050abeff2f99096d4f04312c0c8a6bb432e28744367c5064b3",
}
OUT = Path(__file__).resolve().parents[1] / "core" / "lab" / "facts.json"


def _open(path: Path) -> zipfile.ZipFile:
    blob = path.read_bytes()
    actual = hashlib.sha256(blob).hexdigest()
    if PINS.get(path.name) != actual:
        raise SystemExit(f"{path.name}: SHA-256 {actual} is not the pinned one")
    return zipfile.ZipFile(io.BytesIO(blob))


def capitals(zf: zipfile.ZipFile) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for name in sorted(n for n in zf.namelist() if re.fullmatch(r"countryinfo/data/[^/]+\.json", n)):
        d = json.loads(zf.read(name))
        country, capital = str(d.get("name", "")).strip(), str(d.get("capital", "")).strip()
        if country and capital and "," not in capital and ";" not in capital and country not in seen:
            seen.add(country)  # the archive holds one country under two file names
            out.append({"family": "capital", "subject": country, "answer": capital})
    return sorted(out, key=lambda f: f["subject"])


def elements(zf: zipfile.ZipFile) -> list[dict[str, str]]:
    source = zf.read("periodictable/core.py").decode()
    rows = re.findall(r"^\s*(\d+): \('([A-Za-z]+)',\s*'([A-Za-z]+)',", source, flags=re.M)
    out = []
    for z, name, symbol in rows:
        if int(z) >= 1:  # 0 is the neutron in periodictable's table
            out.append({"family": "symbol", "subject": name, "answer": symbol})
            out.append({"family": "number", "subject": name, "answer": z})
    return out


def main(argv: list[str]) -> int:
    paths = {Path(a).name: Path(a) for a in argv}
    if set(paths) != set(PINS):
        raise SystemExit(f"give the two archives: {', '.join(PINS)}")
    facts = capitals(_open(paths["countryinfo-1.0.1-py3-none-any.whl"])) + elements(_open(paths["periodictable-2.1.0-py3-none-any.whl"]))
    doc = {
        "sources": {
            "capital": "countryinfo 1.0.1, MIT licence, © 2018 Porimol Chandro",
            "symbol": "periodictable 2.1.0, public domain",
            "number": "periodictable 2.1.0, public domain",
        },
        "facts": facts,
    }
    OUT.write_text(json.dumps(doc, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(facts)} facts → {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
