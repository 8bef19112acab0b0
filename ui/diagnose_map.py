"""The Diagnose page's embedding map: every item (or a seeded sample) in 2-D, coloured by label,
label quality, flag, split or a metadata column; a lasso selection opens the items for review."""

from __future__ import annotations

from typing import Literal

import numpy as np
import streamlit as st

from core import charts
from core.diagnose import maps
from core.diagnose.pipeline import DiagnoseConfig, Diagnosis
from core.diagnose.review import item_caption
from core.embed.embeddings import embed
from ui import common
from ui.diagnose_review import PER_PAGE, Review
from ui.state import default

SELECTION: list[Literal["lasso", "box", "points"]] = ["lasso", "box", "points"]


def _projection(r: Review, d: Diagnosis, cfg: DiagnoseConfig, method: str, index: np.ndarray) -> np.ndarray:
    if method == "PCA":
        return d.map2d[index]

    @st.cache_data(show_spinner=f"Running t-SNE on {len(index):,} items…", max_entries=4)
    def tsne_cached(version_id: int, key: str, index: np.ndarray) -> np.ndarray:
        return maps.tsne_2d(np.asarray(embed(common.dataset(version_id), backbone=cfg.backbone)), index)

    return tsne_cached(r.vid, cfg.backbone, index)


def map_tab(r: Review, d: Diagnosis, cfg: DiagnoseConfig) -> None:
    ds = r.ds
    colours, methods = maps.colour_options(ds), list(maps.MAP_LIMITS)
    default("dg_map_colour", colours[0], allowed=colours)
    default("dg_map_method", methods[0], allowed=methods)
    m1, m2 = st.columns([2, 1])
    colour_by = str(m1.radio("Colour by", colours, horizontal=True, key="dg_map_colour", persist_state="session"))
    shown = maps.projection_labels(len(ds))
    method = str(
        m2.radio("Projection", methods, horizontal=True, key="dg_map_method", persist_state="session", format_func=lambda m: shown[m])
    )
    index = maps.map_rows(len(ds), method)
    colour, continuous = maps.map_colours(ds, r.issues, index, colour_by)
    figure = charts.embedding_map(
        _projection(r, d, cfg, method, index),
        colour,
        colour_name=colour_by,
        hover=maps.map_hover(ds, r.issues, index),
        index=index,
        continuous=continuous,
    )
    event = st.plotly_chart(figure, width="stretch", on_select="rerun", selection_mode=SELECTION, key="map_chart")
    points = event.selection.points if event and event.selection else []
    picked = [int(p["customdata"]) for p in points if "customdata" in p]
    if picked:
        st.caption(f"{len(picked):,} items selected; the first {PER_PAGE}:")
        r.gallery(np.asarray(picked[:PER_PAGE]), lambda i: item_caption(ds, i))
    else:
        st.caption("Lasso or box-select points to see the items and act on them.")
