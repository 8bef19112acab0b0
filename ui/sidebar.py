"""The sidebar every page shares: current dataset, compute device, runner status."""

from __future__ import annotations

import streamlit as st

from ui import common

RUNNER_EVERY_S = 3.0  # seconds between redraws of the runner line


def render() -> None:
    store = common.store()
    versions = store.versions()
    with st.sidebar:
        st.markdown("### 🔭 Gapscope")
        if versions:
            ids = [v.id for v in versions]
            labels = {v.id: v.label for v in versions}
            # The widget's own state follows the current version (pages change it too), and a
            # choice here changes the current version: one source of truth, no tug of war.
            current = common.current_version()
            if st.session_state.get("sidebar_dataset") != current:
                st.session_state["sidebar_dataset"] = current
            st.selectbox(
                "Dataset",
                ids,
                format_func=lambda i: labels.get(i, f"v{i}"),
                key="sidebar_dataset",
                on_change=lambda: common.set_current_version(st.session_state["sidebar_dataset"]),
                help="Every import, cleaning or simulation is a version; nothing is edited in place.",
            )
        else:
            st.caption("No dataset yet — open one on the Data page.")
        _status_lines()
        st.caption(f"**Runs train on:** {common.runner_label()}")
        st.caption(f"Home: `{store.home}`")
        _storage_warning(store)


def _storage_warning(store) -> None:
    """Say so when the home cannot take writes: read-only, or its disk (nearly) full."""
    from core.store.space import free_bytes, human, reserve_bytes

    if store.read_only is not None:
        st.warning(
            f"**Read-only:** `{store.home}` cannot be written ({store.read_only}). Browsing works; importing, "
            "cleaning and training need a writable GAPSCOPE_HOME.",
            icon="🔒",
        )
        return
    try:
        free = free_bytes(store.home)
    except OSError:
        return
    if free < 2 * reserve_bytes():
        st.error(
            f"**Disk almost full:** {human(free)} free under `{store.home}`. Stored runs and datasets stay readable; "
            "new imports and runs will be refused until space is freed.",
            icon="💾",
        )


@st.fragment(run_every=RUNNER_EVERY_S)
def _status_lines() -> None:
    """The compute device (while torch loads in the background: "detecting…") and the runs running
    and queued, redrawn on their own every few seconds (one small query), so a sweep's runs show as
    they start and end without reloading the page.

    The fragment only ever redraws itself: an ``st.rerun()`` of the whole app from a timed fragment
    can reach the server with the page's widgets missing from its state, which set them back to
    their defaults (a Train page's epochs typed a moment before came back as 3 under load)."""
    st.caption(f"**Device:** {common.device_label()}")
    counts = common.store().run_counts()
    running, queued = counts.get("running", 0), counts.get("queued", 0)
    state = "busy" if running else "idle"
    st.caption(f"**Runner:** {state} · {running} running · {queued} queued · {sum(counts.values())} runs stored")
