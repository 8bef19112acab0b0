"""Runs on a Ray cluster: each run a Ray task; what it learns comes back to this app's store.

One module per idea (``ray`` itself is imported only inside this package, and only when used):

- ``connect``  — the cluster's address, the TCP check, ``ray.init`` with this checkout's code
- ``protocol`` — what a worker reports (``Kind``) and how each kind is applied (``HANDLERS``)
- ``relay``    — the relay actor between workers and the app, and the app's ``RelayClient``
- ``relay_sink`` — ``RelaySink``, the worker's sink that sends every write to the relay
- ``task``     — ``train_task``, the Ray task that trains one run on a node
- ``drain``    — the pure decision: stored runs + relayed events + past failures → actions
- ``executor`` — carries the actions out (store, relay) and remembers between drains
- ``leader``   — one process per home drains (``DrainLock``)
- ``runner``   — ``RayRunner``, the ``core.runners.base.Runner`` the app uses
- ``keeper``   — ``python -m core.runners.ray.keeper``: the runner ticking with no page open

    from core.runners.ray import RayRunner
    runner = RayRunner(Store(), address="ray://head:10001")
"""

from core.runners.ray.connect import ADDRESS_ENV, NAMESPACE, RUNNER, check_reachable, code_runtime_env, connect, home_key, import_ray
from core.runners.ray.drain import MAX_APPLY_ATTEMPTS, decide
from core.runners.ray.leader import DrainLock
from core.runners.ray.protocol import HANDLERS, AppSink, Kind, write_log_chunk, write_run_file
from core.runners.ray.relay import RELAY_NAME, Relay, RelayClient
from core.runners.ray.relay_sink import RelaySink
from core.runners.ray.runner import RayRunner
from core.runners.ray.task import NODE_HOME_ENV, guard_sqlite, node_home, train_task

__all__ = [
    "ADDRESS_ENV",
    "HANDLERS",
    "MAX_APPLY_ATTEMPTS",
    "NAMESPACE",
    "NODE_HOME_ENV",
    "RELAY_NAME",
    "RUNNER",
    "AppSink",
    "DrainLock",
    "Kind",
    "RayRunner",
    "Relay",
    "RelayClient",
    "RelaySink",
    "check_reachable",
    "code_runtime_env",
    "connect",
    "decide",
    "guard_sqlite",
    "home_key",
    "import_ray",
    "node_home",
    "train_task",
    "write_log_chunk",
    "write_run_file",
]
