"""Page settings that survive leaving the page.

Streamlit forgets a widget's value when a run does not draw the widget (the user went to another
page). ``keep_settings`` — called by ``app.py`` on every run, before any page — turns the values of
widgets whose key starts with one of ``PERSISTENT`` into plain session state, which Streamlit keeps,
and puts back from a copy any that Streamlit dropped anyway. Widgets then take their starting value
from ``default`` (or ``default_choices``, ``default_within``) instead of a ``value=`` argument, so a
value set through session state and a widget default never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

# the Data, Diagnose, Simulate, Train, Runs and Compare pages' settings
PERSISTENT = ("dt_", "dg_", "sm_", "tr_", "rn_", "cmp_")
KEPT = "kept_settings"  # session key: a copy of every setting, under a key no widget owns


def keep_settings() -> None:
    """Keep every setting (a key starting with one of ``PERSISTENT``) as plain session state, and
    put back any that Streamlit dropped.

    Streamlit files the value of a key whose widget was ever drawn under that widget's id, and drops
    it when a run ends without drawing the widget, or at a page switch that follows a fragment's
    rerun (the sidebar's runner line, the Runs page's list, a diagnosis or sweep in progress redraw
    themselves every few seconds; those reruns do not run ``app.py``). So each full run (1) puts
    back, from a copy under ``KEPT`` that no widget owns, every setting that was dropped, and
    (2) deletes and sets each setting again, which forgets the key's widget id: the value stays
    under its key through fragment reruns, and the widget takes it up when its page draws it.
    ``default`` updates the copy, so a change made inside a fragment is kept too.
    """
    ss = st.session_state
    kept: dict[str, Any] = dict(ss.get(KEPT, {}))
    for key, value in kept.items():
        if key not in ss:
            ss[key] = value
    for key in [k for k in ss if isinstance(k, str) and k.startswith(PERSISTENT)]:
        value = ss[key]
        del ss[key]
        ss[key] = kept[key] = value
    ss[KEPT] = kept


def default(key: str, value: Any, *, allowed: list[Any] | None = None) -> None:
    """Give widget ``key`` its starting ``value``, unless the user set one that is still allowed."""
    if key not in st.session_state or (allowed is not None and st.session_state[key] not in allowed):
        st.session_state[key] = value
    _remember(key)


def _remember(key: str) -> None:
    """Copy setting ``key``'s value (the one its widget is about to show) beside the others under ``KEPT``."""
    if key.startswith(PERSISTENT):
        st.session_state[KEPT] = {**st.session_state.get(KEPT, {}), key: st.session_state[key]}


def follow_default(key: str, value: Any) -> None:
    """Like ``default``, but the value follows a default that changes (another dataset, model or
    mode) for as long as the user has not changed it: the last default given is kept beside it,
    under ``key + "_auto"``."""
    auto = f"{key}_auto"
    if key not in st.session_state or st.session_state[key] == st.session_state.get(auto):
        st.session_state[key] = value
    st.session_state[auto] = value
    _remember(key)


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
