"""The login gate in front of every page (``core.auth`` says what protects the app and how)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from core.auth import EXPOSED_WARNING, AccessPolicy, RateLimiter, is_loopback, policy, verify_password

_SIGNED_IN = "_gs_signed_in"  # session key: the hash this session's password matched


@st.cache_resource(show_spinner=False)
def _limiter() -> RateLimiter:
    return RateLimiter()  # one per app process: a new browser tab does not reset the count


def _secrets() -> dict[str, Any]:
    try:
        return st.secrets.to_dict()
    except Exception:  # no secrets.toml: nothing configured
        return {}


def allowed() -> bool:
    """Whether this session may see the pages now (draws nothing)."""
    pol = policy(_secrets())
    if pol.mode == "password":
        return bool(st.session_state.get(_SIGNED_IN) == pol.password_hash)
    if pol.mode == "oidc":
        email = st.user.get("email") if _logged_in() else None
        return _logged_in() and pol.admits(str(email) if email else None)
    return True


def _logged_in() -> bool:
    return bool(st.user.get("is_logged_in", False))  # absent outside a configured server (tests)


def gate() -> None:
    """Stop the page unless this session may use the app; warn loudly when an open app is exposed."""
    pol = policy(_secrets())
    if pol.mode == "oidc":
        _oidc(pol)
    elif pol.mode == "password":
        _password(pol)
    else:
        address = st.get_option("server.address")
        if not is_loopback(address):
            st.error(EXPOSED_WARNING.format(address=address or "every address"), icon="🚨")


def _password(pol: AccessPolicy) -> None:
    if st.session_state.get(_SIGNED_IN) == pol.password_hash:
        with st.sidebar:
            if st.button("Sign out", key="gs_sign_out"):
                st.session_state.pop(_SIGNED_IN, None)
                st.rerun()
        return
    st.title("🔭 Gapscope")
    st.caption("This Gapscope is shared with a password. Ask whoever runs it.")
    client = st.context.ip_address or "unknown"
    with st.form("gs_sign_in"):
        typed = st.text_input("Password", type="password", key="gs_password")
        sent = st.form_submit_button("Sign in", type="primary")
    if sent:
        limiter = _limiter()
        wait = limiter.wait_s(client)
        if wait > 0:
            st.error(f"Too many wrong passwords from this address. Try again in {wait:.0f} s.")
        elif verify_password(typed, pol.password_hash):
            limiter.succeeded(client)
            st.session_state[_SIGNED_IN] = pol.password_hash
            st.rerun()
        else:
            limiter.failed(client)
            st.error("Wrong password.")
    st.stop()


def _oidc(pol: AccessPolicy) -> None:
    auth = _secrets().get("auth", {})
    providers = [k for k, v in auth.items() if isinstance(v, Mapping) and "client_id" in v]
    if not _logged_in():
        st.title("🔭 Gapscope")
        st.caption("Sign in to use this Gapscope.")
        for name in providers or [None]:
            label = f"Sign in with {name.title()}" if name else "Sign in"
            st.button(label, key=f"gs_login_{name}", on_click=st.login, args=(name,) if name else (), type="primary")
        st.stop()
    email = st.user.get("email")
    if not pol.admits(str(email) if email else None):
        st.error(f"{email or 'This account'} is not on this Gapscope's list of people allowed in.")
        st.button("Sign out", key="gs_logout_refused", on_click=st.logout)
        st.stop()
    with st.sidebar:
        st.caption(f"Signed in as {email or st.user.get('name', 'you')}")
        st.button("Sign out", key="gs_logout", on_click=st.logout)
