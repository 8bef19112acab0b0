"""Download buttons for runs: the stakeholder report (HTML) and the raw exports (CSV, Parquet, JSON)."""

from __future__ import annotations

import streamlit as st

from core.report.exports import configs_json, metrics_csv, metrics_parquet
from core.report.html import build_report
from core.store import Store


def export_block(store: Store, run_ids: list[int], *, key: str, title: str, checkpoint: str | None = None) -> None:
    """A "Prepare the report" button, then the report and the exports as downloads; the report reads
    each run at its result, or every run at its last evaluation with ``checkpoint="last"``."""
    slot = f"export_{key}"
    ready = st.session_state.get(slot)
    if ready is None or ready["runs"] != list(run_ids) or ready.get("checkpoint") != checkpoint:
        if st.button(
            "Prepare the report and exports",
            key=f"{slot}_prepare",
            help="A self-contained HTML report that opens offline, and every metric as CSV / Parquet.",
        ):
            with st.spinner("Writing the report…"):
                st.session_state[slot] = {
                    "runs": list(run_ids), "checkpoint": checkpoint,
                    "html": build_report(store, list(run_ids), title=title, checkpoint=checkpoint).encode(),
                    "csv": metrics_csv(store, list(run_ids)), "parquet": metrics_parquet(store, list(run_ids)),
                    "json": configs_json(store, list(run_ids)),
                }  # fmt: skip
            st.rerun()
        return
    stem = "gapscope-runs-" + "-".join(str(r) for r in run_ids)
    c1, c2, c3, c4 = st.columns(4)
    c1.download_button("Report (HTML)", ready["html"], f"{stem}.html", "text/html", key=f"{slot}_html", type="primary")
    c2.download_button("Metrics (CSV)", ready["csv"], f"{stem}-metrics.csv", "text/csv", key=f"{slot}_csv")
    c3.download_button("Metrics (Parquet)", ready["parquet"], f"{stem}-metrics.parquet", "application/octet-stream", key=f"{slot}_parquet")
    c4.download_button("Run configs (JSON)", ready["json"], f"{stem}-configs.json", "application/json", key=f"{slot}_json")
