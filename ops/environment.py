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
from typing import TYPE_CHECKING

import jwt

from devhost import apply_dev_env, mark_local_stack
from devhost.local_queue import register_local_queue

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

STORAGE_SETTINGS = ("STORAGE_CONNECTION_STRING", "STORAGE_ACCOUNT_URL")
STORAGE_SCOPE = "https://storage.azure.com/.default"
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


class OperatorNameRefusedError(ValueError):
    """`--as` (or OPS_OPERATOR) against Azure: there, the audit names the account Azure signed in."""


def uses_azure_identity(environ: MutableMapping[str, str] | None = None) -> bool:
    """True when storage is reached with a token (Azure, keyless), not with a connection string's key."""
    environ = os.environ if environ is None else environ
    return bool(environ.get("STORAGE_ACCOUNT_URL")) and not environ.get("STORAGE_CONNECTION_STRING")


def signed_in_operator(
    credential: TokenCredential, explicit: str | None, environ: MutableMapping[str, str]
) -> str:
    """Who the audit trail names against Azure: the account `az login` signed in, from its token's claims.

    A typed name would let anyone write anyone into the audit, so `--as` is refused here. The token is read,
    not verified: it comes straight from Entra ID through the operator's own credential, and storage (which
    does verify it) refuses the command's writes if it is not genuine.
    """
    if (explicit or environ.get(OPERATOR_SETTING, "")).strip():
        raise OperatorNameRefusedError(
            "--as and OPS_OPERATOR name the operator on the local stack only; against Azure the audit trail "
            "names the account you signed in with (az login)"
        )
    claims = jwt.decode(credential.get_token(STORAGE_SCOPE).token, options={"verify_signature": False})
    who = (
        claims.get("upn")
        or claims.get("unique_name")
        or claims.get("preferred_username")
        or claims.get("appid")
    )
    return f"{who or 'unnamed account'} ({claims.get('tid', '?')}:{claims.get('oid', '?')})"


def operator_name(explicit: str | None, environ: MutableMapping[str, str] | None = None) -> str:
    """Who the audit trail names on the local stack (or with a storage key): `--as`, else OPS_OPERATOR, else
    the local account at this host."""
    environ = os.environ if environ is None else environ
    chosen = (explicit or environ.get(OPERATOR_SETTING, "")).strip()
    return chosen or f"{getpass.getuser()}@{socket.gethostname()}"
