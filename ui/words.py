"""Sentences the pages say about a result, where a number alone would mislead (no streamlit here,
so tests read them directly)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def temperature_words(temperature: float | None, table: pd.DataFrame) -> str:
    """One sentence on what temperature scaling did, when a number in the table would surprise."""
    if temperature is None or not np.isfinite(temperature):
        return ""
    before, after = table.loc["hallucination_rate", "before"], table.loc["hallucination_rate", "after temperature scaling"]
    if temperature < 1 and np.isfinite(before) and np.isfinite(after) and after > before:
        return (
            f"T = {temperature:.2f} < 1: the model was *under*-confident, so scaling sharpens its answers. Calibration "
            f"(ECE {table.loc['ece', 'before']:.3f} → {table.loc['ece', 'after temperature scaling']:.3f}) is what it fits, but more wrong answers now "
            f"reach τ: the hallucination rate rises from {before:.1%} to {after:.1%}. Honest confidence, not fewer confident errors."
        )
    if temperature > 1 and np.isfinite(before) and np.isfinite(after) and after < before:
        return (
            f"T = {temperature:.2f} > 1: the model was over-confident; scaling softens its answers and fewer wrong ones reach τ "
            f"(hallucination rate {before:.1%} → {after:.1%}). The answers themselves are unchanged."
        )
    return ""
