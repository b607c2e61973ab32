"""Where the CLI points: the local stack (dev.env) with nothing configured, else the exported settings."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest

from ops.cli import main
from ops.environment import (
    OperatorNameRefusedError,
    operator_name,
    prepare,
    signed_in_operator,
    uses_azure_identity,
)
from shared.app_context import services
from shared.config import LOCAL_STACK_MARKER
from tests.support.identity_endpoint import identity_endpoint


def test_with_nothing_configured_it_fills_the_local_stacks_settings() -> None:
    environ = {"REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt", "DEVHOST_STATE_DIR": ".local"}

    assert prepare(environ) == "local"

    assert environ["QUEUE_BACKEND"] == "local"
    assert environ["LOCAL_QUEUE_PATH"].endswith("queue.sqlite3")
    assert "127.0.0.1" in environ["STORAGE_CONNECTION_STRING"]
    assert environ["REQUESTS_CA_BUNDLE"].endswith("ca.pem")  # the sandbox's CA, not the shell's bundle
    assert environ[LOCAL_STACK_MARKER] == "1"


def test_with_the_apps_settings_exported_it_adds_nothing_but_a_quiet_log_level() -> None:
    environ = {
        "STORAGE_ACCOUNT_URL": "https://contososaas.table.core.windows.net",
        "ServiceBusConnection__fullyQualifiedNamespace": "contoso-saas.servicebus.windows.net",
    }

    assert prepare(environ) == "configured"

    assert environ.pop("LOG_LEVEL") == "WARNING"
    assert environ == {
        "STORAGE_ACCOUNT_URL": "https://contososaas.table.core.windows.net",
        "ServiceBusConnection__fullyQualifiedNamespace": "contoso-saas.servicebus.windows.net",
    }


def test_the_operator_is_the_flag_else_the_setting_else_the_local_account() -> None:
    assert operator_name("alice", {"OPS_OPERATOR": "bob"}) == "alice"
    assert operator_name(None, {"OPS_OPERATOR": "bob"}) == "bob"
    assert "@" in operator_name(None, {})


def test_only_keyless_storage_means_azure_identity() -> None:
    assert uses_azure_identity({"STORAGE_ACCOUNT_URL": "https://contososaas.table.core.windows.net"})
    assert not uses_azure_identity({"STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"})
    assert not uses_azure_identity({})


@pytest.fixture
def signed_in_as(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Azure's identity endpoint on loopback, handing out a token of a publisher's staff member."""
    claims = {"upn": "olivia.ops@publisher.example", "tid": "tenant-1", "oid": "object-1", "aud": "storage"}
    with identity_endpoint(monkeypatch, token=jwt.encode(claims, "k" * 32, algorithm="HS256")):
        yield


def test_against_azure_the_audit_names_the_signed_in_account(signed_in_as: None) -> None:
    credential = services().azure_credential

    assert signed_in_operator(credential, None, {}) == "olivia.ops@publisher.example (tenant-1:object-1)"


def test_against_azure_a_typed_name_is_refused(signed_in_as: None) -> None:
    credential = services().azure_credential

    with pytest.raises(OperatorNameRefusedError):
        signed_in_operator(credential, "mallory", {})
    with pytest.raises(OperatorNameRefusedError):
        signed_in_operator(credential, None, {"OPS_OPERATOR": "mallory"})


def test_the_cli_refuses_as_against_azure_before_doing_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STORAGE_ACCOUNT_URL", "https://contososaas.table.core.windows.net")
    monkeypatch.delenv("STORAGE_CONNECTION_STRING", raising=False)

    assert main(["reconcile", "--subscription", "x", "--as", "mallory"]) == 2
    assert "name the operator on the local stack only" in capsys.readouterr().err
