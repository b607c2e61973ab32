"""Where the CLI points: the local stack (dev.env) with nothing configured, else the exported settings."""

from __future__ import annotations

from ops.environment import operator_name, prepare
from shared.config import LOCAL_STACK_MARKER


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
