"""Drawing dataset items (an image or a text) in galleries, shared by the pages."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

from core.data.dataset import Dataset, item_ref


def show_item(ds: Dataset, i: int, *, caption: str | None = None, width: int = 110) -> None:
    if ds.modality == "image":
        st.image(np.asarray(ds.items[i]), width=width, clamp=True)
    elif ds.modality == "text":
        text = str(ds.items[i])
        st.markdown("> " + (text[:400] + " …" if len(text) > 400 else text).replace("\n", " "))
    else:
        st.dataframe(ds.items.iloc[[i]], hide_index=True)
    if caption:
        st.caption(caption)


def gallery(
    ds: Dataset, items: np.ndarray, *, caption: Callable[[int], str], per_row: int, footer: Callable[[int], None] | None = None
) -> None:
    """Items in a grid; ``footer(i)`` draws per-item controls under each one."""
    per_row = per_row if ds.modality == "image" else 1 if footer is None else 2
    for start in range(0, len(items), per_row):
        cols = st.columns(per_row)
        for col, i in zip(cols, items[start : start + per_row]):
            with col.container(border=True):
                show_item(ds, int(i), caption=caption(int(i)))
                if footer is not None:
                    footer(int(i))


def label_of(ds: Dataset, i: int) -> str:
    return ds.label_name(i)


def where(ds: Dataset, i: int) -> str:
    """'#123 · train': the item's number in its import (``Dataset.item_ids``) and its split."""
    return item_ref(ds, i)


def image_strip(images: np.ndarray, *, side: int = 96, gap: int = 4) -> np.ndarray:
    """uint8 images (n, H, W[, 3]) side by side in one RGB image, each scaled to ``side`` px high
    (nearest neighbour, so small images stay crisp), with white gaps."""
    from PIL import Image

    tiles = []
    for img in images:
        pil = Image.fromarray(np.asarray(img)).convert("RGB")
        width = max(1, round(pil.width * side / pil.height))
        tiles.append(np.asarray(pil.resize((width, side), Image.Resampling.NEAREST)))
    parts = []
    for tile in tiles:
        parts += [tile, np.full((side, gap, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=1) if parts else np.zeros((side, 1, 3), np.uint8)
