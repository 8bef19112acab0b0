"""Connecting this app to a Ray cluster: where it is, whether it answers, and ``ray.init`` with
this checkout's code.

    from core.runners.ray.connect import connect
    ray = connect("ray://head:10001")   # or auto, or 10.0.0.5:6379; a DataError says why it cannot

``connect`` first checks that the address accepts a TCP connection within seconds (``ray.init``
alone retries for minutes and would hold every page that needs the runner), then joins the
cluster in the ``gapscope`` namespace with a ``runtime_env`` whose ``working_dir`` is this
checkout, so every node runs the app's own version of the code. Nothing here runs on a node.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import DataError

if TYPE_CHECKING:
    from core.store.database import Store

REPO_ROOT = Path(__file__).resolve().parents[3]
ADDRESS_ENV = "GAPSCOPE_RAY_ADDRESS"  # ray://head:10001, auto, or host:6379
NAMESPACE = "gapscope"
RUNNER = "ray"  # runs.runner of the runs the Ray runner claims

#: Left out of the code shipped to the cluster (``runtime_env`` ``working_dir``).
CODE_EXCLUDES = [
    ".git",
    ".venv",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "**/__pycache__",
    "*.egg-info",
    ".gapscope",
    ".streamlit/secrets.toml",
    "benchmarks/out",
    "build",
    "dist",
    "tests/e2e",
]


def check_reachable(address: str, *, timeout_s: float = 3.0) -> None:
    """A ``DataError`` unless ``host:port`` of ``address`` (``ray://host:port`` or ``host:port``)
    accepts a TCP connection within ``timeout_s``. ``auto`` and ``local`` are not checked."""
    target = address.removeprefix("ray://")
    if address in ("auto", "local") or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as err:
        raise DataError(
            f"Cannot reach the Ray cluster at {address} ({err}). Start the cluster, correct {ADDRESS_ENV}, "
            "or unset it to train on this machine."
        ) from err


def import_ray() -> Any:
    """``import ray``, or a ``DataError`` saying how to get it."""
    try:
        import ray
    except ImportError as err:
        raise DataError(
            f"Running on a Ray cluster needs Ray in this environment ({err}): pip install '.[ray]' "
            f"(or unset {ADDRESS_ENV} to train on this machine)."
        ) from err
    return ray


def code_runtime_env() -> dict[str, Any]:
    """The ``runtime_env`` that ships this checkout's code to every node with each job (nodes need
    the same Python packages installed; the code itself travels)."""
    return {"working_dir": str(REPO_ROOT), "excludes": list(CODE_EXCLUDES)}


def connect(address: str | None, *, ship_code: bool = True) -> Any:
    """The ``ray`` module, joined to the cluster at ``address`` unless Ray is already initialised
    in this process; a ``DataError`` with the reason when it cannot be."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if address is None:
        raise DataError(f"No Ray cluster to connect to: set {ADDRESS_ENV} (ray://head:10001, auto, or host:6379).")
    check_reachable(address)
    try:
        ray.init(
            address=address,
            namespace=NAMESPACE,
            runtime_env=code_runtime_env() if ship_code else None,
            ignore_reinit_error=True,
            log_to_driver=False,
        )
    except Exception as err:
        raise DataError(
            f"Could not connect to the Ray cluster at {address}: {type(err).__name__}: {err}. A cluster with token "
            "authentication (Ray's default) also needs RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN or ~/.ray/auth_token."
        ) from err
    return ray


def home_key(store: Store) -> str:
    """Which store a run id belongs to, on a relay that several apps (homes) may share."""
    return f"{socket.gethostname()}:{store.home.resolve()}"


def error_text(err: BaseException) -> str:
    """``Type: message`` of ``err`` (of the task's own exception for a ``RayTaskError``), at most
    2,000 characters."""
    cause = getattr(err, "cause", None)  # a RayTaskError carries the task's own exception
    if isinstance(cause, BaseException):
        err = cause
    text = f"{type(err).__name__}: {err}".strip()
    return text[-2000:]
