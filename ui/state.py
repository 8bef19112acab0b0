"""Page settings that survive leaving the page.

Every setting's widget has a key starting with one of ``PERSISTENT`` (the page it belongs to) and is
drawn with ``persist_state="session"``: Streamlit itself keeps its value while another page is
shown, through fragment reruns and page switches alike. Widgets take their starting value from
``default`` (or ``default_choices``, ``default_within``, ``follow_default``) instead of a
``value=`` argument, so a value set through session state and a widget default never disagree.

``st.tabs`` has no ``persist_state``; ``keep_settings`` — called by ``app.py`` on every run, before
any page — keeps the open tab of the widgets in ``COPIED`` by a copy under ``KEPT``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

# the Data, Diagnose, Simulate, Train, Runs, Compare, Shift, Selection and Lab pages' settings
PERSISTENT = ("dt_", "dg_", "sm_", "tr_", "rn_", "cmp_", "sh_", "se_", "lb_")
COPIED = ("dg_tab",)  # settings whose widget has no ``persist_state`` (tabs)
KEPT = "kept_settings"  # session key: a copy of each of ``COPIED``, under a key no widget owns


def keep_settings() -> None:
    """Put back any of ``COPIED`` that Streamlit dropped, and keep each as plain session state.

    Streamlit files the value of a key whose widget was drawn under that widget's id and drops it
    when a run ends without drawing the widget. Each full run puts back what was dropped from the
    copy under ``KEPT``, then deletes and sets each key again, which forgets the key's widget id.
    """
    ss = st.session_state
    kept: dict[str, Any] = dict(ss.get(KEPT, {}))
    for key in COPIED:
        if key not in ss and key in kept:
            ss[key] = kept[key]
        if key in ss:
            value = ss[key]
            del ss[key]
            ss[key] = kept[key] = value
    ss[KEPT] = kept


def default(key: str, value: Any, *, allowed: list[Any] | None = None) -> None:
    """Give widget ``key`` its starting ``value``, unless the user set one that is still allowed."""
    if key not in st.session_state or (allowed is not None and st.session_state[key] not in allowed):
        st.session_state[key] = value


def follow_default(key: str, value: Any) -> None:
    """Like ``default``, but the value follows a default that changes (another dataset, model or
    mode) for as long as the user has not changed it: the last default given is kept beside it,
    under ``key + "_auto"``."""
    auto = f"{key}_auto"
    if key not in st.session_state or st.session_state[key] == st.session_state.get(auto):
        st.session_state[key] = value
    st.session_state[auto] = value


def default_choices(key: str, options: Sequence[Any], value: Sequence[Any] = ()) -> None:
    """For a multiselect: start at ``value``; of the user's choices keep those still offered (the
    classes of the dataset shown, not of the one before)."""
    default(key, list(value))
    kept = [v for v in st.session_state[key] if v in options]
    if kept != st.session_state[key]:
        st.session_state[key] = kept


def default_within(key: str, value: float, lo: float, hi: float) -> None:
    """For a number whose range changes (a page of a list that filters shorten): start at ``value``;
    a value the user set that is now out of ``[lo, hi]`` moves to the nearer end."""
    default(key, value)
    kept = st.session_state[key]
    if not lo <= kept <= hi:
        st.session_state[key] = type(kept)(min(max(kept, lo), hi))
