"""Who may use an exposed Gapscope: a shared password (hashed, rate-limited) or an identity provider.

Gapscope binds to 127.0.0.1 unless told otherwise; then only this machine reaches it. To expose it
(``GAPSCOPE_ADDRESS=0.0.0.0``) protect it with one of:

- **An identity provider** (OIDC: Google, Microsoft, Okta, Auth0, Keycloak…): an ``[auth]`` section
  in ``.streamlit/secrets.toml`` as Streamlit's ``st.login`` reads it (``redirect_uri``,
  ``cookie_secret``, ``client_id``, ``client_secret``, ``server_metadata_url``); optionally
  ``[gapscope] allowed_emails = ["a@x.org", "@x.org"]`` to admit only those people or domains.
- **A shared password** for a team without one: ``python -m core.auth hash`` prints a salted
  scrypt hash; put it in ``GAPSCOPE_PASSWORD_HASH`` or in ``.streamlit/secrets.toml`` as
  ``[gapscope] password_hash = "…"``. The password itself is stored nowhere. Wrong guesses are
  rate-limited per client address: after 5, each further try waits 2, 4, 8… s, up to 15 min.

``ui.access.gate`` applies this on every page; starting on a non-loopback address with neither
configured shows a red warning on every page (and ``gapscope.sh`` prints one).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import ipaddress
import os
import secrets
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_N, _R, _P = 2**14, 8, 1  # scrypt cost: ~50 ms and 16 MiB per try


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) for ``password``; safe to store, slow to brute-force."""
    if not password:
        raise ValueError("an empty password protects nothing; choose one")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (from ``hash_password``); constant time."""
    try:
        kind, n, r, p, salt, digest = stored.strip().split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


@dataclass
class RateLimiter:
    """Wrong guesses per client: ``free`` tries, then a wait that doubles with each failure."""

    free: int = 5
    first_wait_s: float = 2.0
    max_wait_s: float = 900.0
    _fails: dict[str, tuple[int, float]] = field(default_factory=dict)  # client → (failures, last failure time)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, client: str, *, now: float | None = None) -> float:
        """Seconds ``client`` must wait before the next try (0: may try now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            fails, last = self._fails.get(client, (0, 0.0))
        if fails < self.free:
            return 0.0
        wait = min(self.first_wait_s * 2 ** (fails - self.free), self.max_wait_s)
        return max(0.0, last + wait - now)

    def failed(self, client: str, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            fails, _ = self._fails.get(client, (0, 0.0))
            self._fails[client] = (fails + 1, now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._fails.pop(client, None)


@dataclass(frozen=True)
class AccessPolicy:
    """What protects this app: ``"oidc"``, ``"password"`` or ``"none"``."""

    mode: str
    password_hash: str = ""
    allowed_emails: tuple[str, ...] = ()

    def admits(self, email: str | None) -> bool:
        """Whether a signed-in ``email`` may use the app (no list: everyone the provider signs in)."""
        if not self.allowed_emails:
            return True
        email = (email or "").strip().lower()
        return any(email == a.lower() or (a.startswith("@") and email.endswith(a.lower())) for a in self.allowed_emails)


def policy(secrets_: Mapping[str, Any], env: Mapping[str, str] | None = None) -> AccessPolicy:
    """The access policy from Streamlit's secrets and the environment (OIDC wins over a password)."""
    env = os.environ if env is None else env
    ours = dict(secrets_.get("gapscope", {}) or {})
    allowed = tuple(str(a) for a in ours.get("allowed_emails", ()) or ())
    auth = secrets_.get("auth", {}) or {}
    if auth and ("client_id" in auth or any(isinstance(v, Mapping) and "client_id" in v for v in auth.values())):
        return AccessPolicy("oidc", allowed_emails=allowed)
    hashed = str(env.get("GAPSCOPE_PASSWORD_HASH") or ours.get("password_hash") or "")
    if hashed:
        return AccessPolicy("password", password_hash=hashed)
    return AccessPolicy("none")


def is_loopback(address: str | None) -> bool:
    """Whether binding to ``address`` keeps the app on this machine."""
    if not address or address == "localhost":
        return address == "localhost"
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


EXPOSED_WARNING = (
    "Gapscope is listening on {address}, beyond this machine, with no login: anyone who can reach it can read "
    "every dataset and start runs. Set a shared password (python -m core.auth hash → GAPSCOPE_PASSWORD_HASH) or an "
    "identity provider ([auth] in .streamlit/secrets.toml), or bind to 127.0.0.1."
)


def secrets_file(root: str = ".") -> dict[str, Any]:
    """``.streamlit/secrets.toml`` under ``root`` (and the user's), merged, as Streamlit reads them."""
    import tomllib
    from pathlib import Path

    merged: dict[str, Any] = {}
    for path in (Path.home() / ".streamlit" / "secrets.toml", Path(root) / ".streamlit" / "secrets.toml"):
        if path.is_file():
            merged.update(tomllib.loads(path.read_text()))
    return merged


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["check"] and len(args) == 2:  # gapscope.sh: warn before exposing an open app
        if not is_loopback(args[1]) and policy(secrets_file()).mode == "none":
            print("\n  WARNING: " + EXPOSED_WARNING.format(address=args[1] or "every address") + "\n", file=sys.stderr)
        return 0
    if args[:1] != ["hash"]:
        print("usage: python -m core.auth hash | check ADDRESS", file=sys.stderr)
        return 2
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        print("The two passwords differ; nothing printed.", file=sys.stderr)
        return 1
    if len(first) < 10:
        print("Use at least 10 characters: the app is reachable from the network.", file=sys.stderr)
        return 1
    print(hash_password(first))
    print('Put it in GAPSCOPE_PASSWORD_HASH, or in .streamlit/secrets.toml under [gapscope] as password_hash = "…".', file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
