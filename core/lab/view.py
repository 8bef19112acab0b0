"""What the Lab page shows, read from the store: torch-free, every number from a lab run's rows.

- ``corpus_preview``: a corpus's figures before it is saved — people per exposure count, the
  monofact rate, Good–Turing's estimate, biographies, words — and sample biographies;
- ``lab_runs``: the lab runs on a corpus version, newest first;
- ``exposure_table``: one evaluation's metrics per exposure count (the run's ``slice/exposure=k``
  rows), the held-out people's invented and abstained shares beside them;
- ``exposure_curves``: every evaluation's per-exposure accuracy, hallucination @τ and confidence
  (the live curves over training);
- ``kv_line``: the measured invented rate on held-out people beside the corpus's monofact rate
  minus the run's miscalibration (Kalai & Vempala's line).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.lab.corpus import Corpus, exposure_histogram, good_turing, monofact_rate
from core.lab.metrics import kalai_vempala
from core.lab.settings import LAB_MODEL
from core.metrics.results import RunResults
from core.store import Store

LAB_KEYS = {"lab_invented": "invented", "lab_invented_confident": "invented_confident", "lab_abstained": "abstained"}


def corpus_preview(corpus: Corpus, n_samples: int = 3) -> dict[str, Any]:
    hist = exposure_histogram(corpus)
    n = min(n_samples, len(corpus.bios))
    picks = np.random.default_rng(0).choice(len(corpus.bios), size=n, replace=False) if n else np.zeros(0, dtype=np.int64)
    return {
        "exposure": pd.DataFrame({"appearances": list(hist), "people": list(hist.values())}),
        "monofact_rate": monofact_rate(corpus),
        "good_turing": good_turing(corpus),
        "biographies": len(corpus.bios),
        "words": corpus.n_words(),
        "held_out": int(corpus.held_out.sum()),
        "wrong": len(corpus.wrong),
        "samples": [(corpus.people[int(corpus.bio_person[b])], corpus.bios[int(b)]) for b in picks],
    }


def lab_runs(store: Store, version_id: int) -> list:
    """The lab runs on ``version_id``, newest first."""
    return [r for r in store.runs() if r.version_id == version_id and r.config.get("model") == LAB_MODEL]


def _exposure_rows(res: RunResults, step: int | None) -> pd.DataFrame:
    sl = res.slices(step=step)
    sl = sl[sl["column"] == "exposure"]
    if sl.empty:
        return pd.DataFrame(columns=["exposure", "n", "accuracy", "hallucination_rate", "ece"])
    wide = sl.pivot_table(index="value", columns="metric", values="score", aggfunc="first").reset_index()
    wide["exposure"] = wide.pop("value").astype(int)
    return wide.sort_values("exposure").reset_index(drop=True)


def exposure_table(res: RunResults, step: int | None = None) -> pd.DataFrame:
    """Per exposure count at one evaluation (default: the latest): n, accuracy, hallucination @τ,
    ECE; for held-out people (0) also invented, confidently invented and abstained."""
    t = _exposure_rows(res, step)
    values = res.values(step=step)
    if not t.empty and (t["exposure"] == 0).any():
        for key, col in LAB_KEYS.items():
            v = values.get(key)
            t[col] = np.where(t["exposure"] == 0, np.nan if v is None else v, np.nan)
    keep = [c for c in ("exposure", "n", "accuracy", "hallucination_rate", "ece", *LAB_KEYS.values()) if c in t]
    return t[keep]


def exposure_curves(res: RunResults) -> pd.DataFrame:
    """Every evaluation's per-exposure rows: step, exposure, accuracy, hallucination_rate, ece."""
    frames = []
    for step in res.eval_steps("test"):
        t = _exposure_rows(res, step)
        if not t.empty:
            frames.append(t.assign(step=step))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["step", "exposure", "accuracy"])


def taught_curve(res: RunResults) -> pd.DataFrame:
    """With ``teach_unknown``, per evaluation: how many taught held-out facts the model answers right
    (``taught``), and the confidently invented answers on the other held-out people (``invented_confident``)."""
    rows = []
    for step in res.eval_steps("test"):
        taught = res.at("lab_taught_accuracy", step)
        if taught is not None:
            rows.append({"step": step, "taught": taught, "invented_confident": res.at("lab_invented_confident", step)})
    return pd.DataFrame(rows, columns=["step", "taught", "invented_confident"])


def kv_line(res: RunResults, monofact: float, step: int | None = None) -> dict[str, float | None]:
    """The held-out people's invented rate, the monofact rate, the seen facts' ECE (weighted by
    questions) and the bound monofact − ECE."""
    t = exposure_table(res, step)
    seen = t[t["exposure"] > 0] if not t.empty else t
    ece = float(np.average(seen["ece"], weights=seen["n"])) if len(seen) and seen["n"].sum() > 0 else None
    held = t[t["exposure"] == 0] if not t.empty else t
    invented = float(held["invented"].iloc[0]) if len(held) and "invented" in held else None
    return {
        "invented": invented,
        "monofact_rate": float(monofact),
        "ece_seen": ece,
        "bound": None if ece is None else kalai_vempala(monofact, ece),
    }


def findings(table: pd.DataFrame, kv: dict[str, float | None], tau: float, taught: pd.DataFrame | None = None) -> list[str]:
    """What one lab evaluation shows about missing facts, in plain sentences (the Lab page and the
    report); with ``taught_curve``'s table, what teaching unknown facts did."""
    if table.empty:
        return []
    seen = table[table["exposure"] > 0].sort_values("exposure")
    out = []
    if len(seen):
        parts = [f"{row.accuracy:.0%} of the facts seen {int(row.exposure)}×" for row in seen.itertuples()]
        out.append("The model answers right " + ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] + ".")
        once = seen[seen["exposure"] == 1]
        if len(once):
            h = float(once["hallucination_rate"].iloc[0])
            out.append(
                f"Of the facts seen once, {h:.0%} are answered wrongly with confidence ≥ {tau:g}: a fact read once is often not "
                "learned, and the model answers anyway."
                if h > 0
                else f"No wrong answer about a fact seen once reaches confidence {tau:g}."
            )
    held = table[table["exposure"] == 0]
    if len(held) and "invented" in held and pd.notna(held["invented"].iloc[0]):
        inv, conf = float(held["invented"].iloc[0]), float(held["invented_confident"].iloc[0])
        abst = float(held["abstained"].iloc[0]) if "abstained" in held else 0.0
        out.append(
            f"For people the corpus never mentions it invents an answer to {inv:.0%} of the questions ({conf:.0%} with confidence ≥ {tau:g}) "
            f"and says 'unknown' to {abst:.0%}."
        )
    if taught is not None and len(taught) >= 2 and taught[["taught", "invented_confident"]].notna().all(axis=None):
        first, last = taught.iloc[0], taught.iloc[-1]
        out.append(
            f"Facts no biography states, taught only as question and answer: answered right {first.taught:.0%} at step {int(first.step)} "
            f"and {last.taught:.0%} at step {int(last.step)}; meanwhile confidently invented answers on the other unseen people went "
            f"from {first.invented_confident:.0%} to {last.invented_confident:.0%} (Gekhman et al. found such facts learned late, "
            "and hallucination rising as they are)."
        )
    if kv.get("bound") is not None:
        measured = f"; measured on the people it never saw: {kv['invented']:.0%}" if kv.get("invented") is not None else ""
        out.append(
            f"Kalai & Vempala's lower bound on how often a model that always answers makes facts up: the monofact rate "
            f"({kv['monofact_rate']:.0%}) minus its miscalibration ({kv['ece_seen']:.2f}) = {kv['bound']:.0%}{measured}."
        )
    return out
