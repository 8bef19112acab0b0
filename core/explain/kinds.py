"""What an attribution is, torch-free: the methods per modality, their names in words, the
``Attribution`` record the cache keeps and the report reads, and how a text loses words."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

METHODS: dict[str, tuple[str, ...]] = {
    "image": ("integrated_gradients", "occlusion", "gradients"),
    "text": ("integrated_gradients", "gradients"),
    "tabular": ("feature_ablation", "integrated_gradients", "gradients"),
}
METHOD_WORDS = {
    "integrated_gradients": "Integrated Gradients",
    "occlusion": "Occlusion",
    "feature_ablation": "Feature ablation",
    "gradients": "Plain gradients",
}


@dataclass(frozen=True)
class Attribution:
    """One item's attribution for one class.

    ``values``: image (H, W) summed over channels; text (words,); table (columns,). ``parts``: the
    words or column names (empty for images). ``prob``: the model's probability of ``target`` on
    the item (no temperature). ``delta``: Integrated Gradients' convergence delta, else None."""

    item: int
    target: int  # a dataset class index
    method: str
    values: np.ndarray
    parts: list[str] = field(default_factory=list)
    prob: float = float("nan")
    delta: float | None = None
    seconds: float = 0.0
    spans: list[tuple[int, int]] = field(default_factory=list)  # text: each word's characters in the item


def without_words(text: str, spans: list[tuple[int, int]], drop: np.ndarray) -> str:
    """``text`` with the words at positions ``drop`` (indices into ``spans``) removed."""
    chars = list(text)
    for w in np.asarray(drop, dtype=np.int64).tolist():
        a, b = spans[w]
        chars[a:b] = [" "] * (b - a)
    return re.sub(r"\s+", " ", "".join(chars)).strip()
