"""Where the CLI points: the local stack when nothing is configured, else the app settings it is given.

With no storage setting in the environment it fills the rest from the dev host's `devhost/dev.env`, as the
dev host and `bench/burst.py` do, so `python -m ops ...` beside `make dev` needs no configuration. Against
Azure the operator exports the app's settings (README, "Operating it") and signs in with `az login`: the
composition root's `DefaultAzureCredential` then uses the Azure CLI's token for Table Storage and Service
Bus. The local queue backend is always registered: a checkout has the dev host, and `QUEUE_BACKEND` picks.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import MutableMapping

from devhost import apply_dev_env, mark_local_stack
from devhost.local_queue import register_local_queue

STORAGE_SETTINGS = ("STORAGE_CONNECTION_STRING", "STORAGE_ACCOUNT_URL")
OPERATOR_SETTING = "OPS_OPERATOR"


def prepare(environ: MutableMapping[str, str] | None = None) -> str:
    """Completes the environment before the first `services()`; returns "local" or "configured"."""
    environ = os.environ if environ is None else environ
    register_local_queue()
    environ.setdefault("LOG_LEVEL", "WARNING")  # the tool's output is its tables, not the app's log lines
    if any(environ.get(name) for name in STORAGE_SETTINGS):
        return "configured"
    # dev.env names the sandbox's CA; a system bundle set in the shell would otherwise win over it.
    environ.pop("REQUESTS_CA_BUNDLE", None)
    apply_dev_env(environ)
    mark_local_stack(environ)
    return "local"


def operator_name(explicit: str | None, environ: MutableMapping[str, str] | None = None) -> str:
    """Who the audit trail names: `--as`, else OPS_OPERATOR, else the local account at this host."""
    environ = os.environ if environ is None else environ
    chosen = (explicit or environ.get(OPERATOR_SETTING, "")).strip()
    return chosen or f"{getpass.getuser()}@{socket.gethostname()}"
