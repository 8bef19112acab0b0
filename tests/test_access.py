"""Access control: the password hash, the rate limit, the policy, and the gate in front of every page."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.auth import AccessPolicy, RateLimiter, hash_password, is_loopback, main, policy, verify_password
from tests.conftest import APP


def test_a_password_hash_is_salted_and_verifies_only_the_password():
    a, b = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert a != b and a.startswith("scrypt$")  # a new salt each time
    assert "correct horse" not in a
    assert verify_password("correct horse battery", a) and verify_password("correct horse battery", b)
    assert not verify_password("correct horse batterY", a)
    assert not verify_password("", a)
    for broken in ("", "plain", "scrypt$1$2", "md5$1$1$1$AA==$AA==", "scrypt$x$8$1$AA==$AA=="):
        assert not verify_password("anything", broken)
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_the_rate_limit_doubles_the_wait_after_five_wrong_guesses_per_client():
    lim = RateLimiter(free=5, first_wait_s=2.0, max_wait_s=60.0)
    for _ in range(5):
        assert lim.wait_s("1.2.3.4", now=100.0) == 0.0
        lim.failed("1.2.3.4", now=100.0)
    assert lim.wait_s("1.2.3.4", now=100.0) == 2.0
    assert lim.wait_s("5.6.7.8", now=100.0) == 0.0  # another client is not held up
    lim.failed("1.2.3.4", now=102.0)
    assert lim.wait_s("1.2.3.4", now=102.0) == 4.0
    for t in range(10):
        lim.failed("1.2.3.4", now=110.0 + t)
    assert lim.wait_s("1.2.3.4", now=119.0) == 60.0  # capped
    assert lim.wait_s("1.2.3.4", now=200.0) == 0.0
    lim.succeeded("1.2.3.4")
    assert lim.wait_s("1.2.3.4", now=119.0) == 0.0


def test_policy_reads_oidc_first_then_a_password_from_env_or_secrets():
    oidc = {"auth": {"redirect_uri": "https://x/oauth2callback", "cookie_secret": "s", "client_id": "id", "client_secret": "c"}}
    assert policy(oidc, env={}).mode == "oidc"
    named = {
        "auth": {"redirect_uri": "r", "cookie_secret": "s", "google": {"client_id": "id"}},
        "gapscope": {"allowed_emails": ["@lab.org"]},
    }
    pol = policy(named, env={})
    assert pol.mode == "oidc" and pol.admits("Ann@Lab.org") and not pol.admits("eve@evil.org") and not pol.admits(None)
    assert AccessPolicy("oidc").admits("anyone@any.where")
    assert policy({"gapscope": {"password_hash": "scrypt$h"}}, env={}) == AccessPolicy("password", password_hash="scrypt$h")
    assert policy({}, env={"GAPSCOPE_PASSWORD_HASH": "scrypt$e"}).password_hash == "scrypt$e"
    assert policy({}, env={}).mode == "none"


def test_loopback_addresses():
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "", None, "192.168.1.5", "::", "example.org"]))


def test_starting_exposed_without_a_login_warns(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GAPSCOPE_PASSWORD_HASH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["check", "0.0.0.0"]) == 0
    assert "WARNING" in capsys.readouterr().err
    assert main(["check", "127.0.0.1"]) == 0
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("GAPSCOPE_PASSWORD_HASH", hash_password("a long password"))
    assert main(["check", "0.0.0.0"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_the_password_gate_keeps_every_page_shut_until_the_right_password(monkeypatch):
    monkeypatch.setenv("GAPSCOPE_PASSWORD_HASH", hash_password("team password 42"))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "🔭 Gapscope" and len(at.text_input) == 1
    assert not any("Gapscope" == t.value for t in at.title[1:])  # the home page did not draw
    at.text_input[0].input("wrong")
    at.button[0].click()
    at.run()
    assert any("Wrong password" in e.value for e in at.error)
    at.text_input[0].input("team password 42")
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Gapscope"]  # the home page
    assert any(b.label == "Sign out" for b in at.sidebar.button)


@pytest.mark.slow
def test_an_open_app_on_a_public_address_shows_a_loud_warning(monkeypatch):
    from streamlit import config

    monkeypatch.delenv("GAPSCOPE_PASSWORD_HASH", raising=False)
    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
        assert not at.exception, at.exception
        assert any("no login" in e.value for e in at.error)
    finally:
        config.set_option("server.address", before)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not any("no login" in e.value for e in at.error)


@pytest.mark.slow
def test_with_an_identity_provider_configured_the_pages_wait_for_a_sign_in(monkeypatch):
    monkeypatch.delenv("GAPSCOPE_PASSWORD_HASH", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["auth"] = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "a long random secret",
        "lab": {
            "client_id": "gapscope",
            "client_secret": "s",
            "server_metadata_url": "https://id.lab.example/.well-known/openid-configuration",
        },
    }
    at.secrets["gapscope"] = {"allowed_emails": ["@lab.example"]}
    at.run()
    assert not at.exception, at.exception
    assert [b.label for b in at.button] == ["Sign in with Lab"]
    assert [t.value for t in at.title] == ["🔭 Gapscope"]  # no page drew
