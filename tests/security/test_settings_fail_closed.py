"""Settings fail closed: an unresolved Key Vault reference or a public dev secret stops the app at start.

Azure keeps the literal `@Microsoft.KeyVault(...)` text in a setting it could not resolve; that text is in
the deployment template, hence public, and long enough to pass the 32-character rule of SESSION_SECRET.
devhost/dev.env's secrets are in the repository. Neither may ever sign a cookie outside the local stack.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost import PROJECT_ROOT, apply_dev_env, read_dev_env
from shared.app_context import reset_services, services
from shared.config import PUBLIC_DEV_VALUES, ConfigurationError, check_fail_closed

SECRET_URI = "https://contoso-vault.vault.azure.net/secrets/session-secret/0123456789abcdef"
UNRESOLVED = f"@Microsoft.KeyVault(SecretUri={SECRET_URI})"
OWN_SECRET = "a-secret-of-this-deployment-0123456789abcdef"


def start_environment(**settings: str) -> dict[str, str]:
    """What a Function App instance sees: valid settings of its own, plus `settings`."""
    base = {
        "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "SESSION_SECRET": OWN_SECRET,
        "QUEUE_BACKEND": "memory",
    }
    return {**base, **settings}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean process environment for the composition root, restored afterwards."""
    for name in [*PUBLIC_DEV_VALUES, "DEVHOST_LOCAL_STACK", "WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME"]:
        monkeypatch.delenv(name, raising=False)
    reset_services()
    yield monkeypatch
    reset_services()


def test_an_unresolved_key_vault_reference_stops_the_composition_root(
    environment: pytest.MonkeyPatch,
) -> None:
    for name, value in start_environment(SESSION_SECRET=UNRESOLVED).items():
        environment.setenv(name, value)
    with pytest.raises(ConfigurationError) as refused:
        services()
    assert "SESSION_SECRET" in str(refused.value)
    assert SECRET_URI not in str(refused.value) and "KeyVault(" not in str(refused.value)  # noqa: PT018


@pytest.mark.parametrize("name", ["PUBLISHER_CLIENT_SECRET", "SSO_CLIENT_SECRET", "ServiceBusConnection"])
def test_any_setting_with_a_reference_is_named(name: str) -> None:
    env = start_environment(**{name: f"  @microsoft.keyvault(VaultName=contoso;SecretName={name})"})
    with pytest.raises(ConfigurationError, match=name):
        check_fail_closed(env)


def test_the_app_does_not_start_with_an_unresolved_reference() -> None:
    """What the Functions host does at start: import function_app. It must fail, naming the setting."""
    env = {**os.environ, **start_environment(SESSION_SECRET=UNRESOLVED, WEBSITE_INSTANCE_ID="abc123")}
    started = subprocess.run(
        [sys.executable, "-c", "import function_app"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert started.returncode != 0
    assert "SESSION_SECRET" in started.stderr
    assert SECRET_URI not in started.stderr + started.stdout


@pytest.mark.parametrize("name", sorted(PUBLIC_DEV_VALUES))
def test_a_public_dev_secret_is_refused_outside_the_local_stack(
    environment: pytest.MonkeyPatch, name: str
) -> None:
    for setting, value in start_environment(**{name: PUBLIC_DEV_VALUES[name]}).items():
        environment.setenv(setting, value)
    with pytest.raises(ConfigurationError) as refused:
        services()
    assert name in str(refused.value)
    assert PUBLIC_DEV_VALUES[name] not in str(refused.value)


def test_the_whole_dev_env_is_refused_without_the_dev_hosts_word() -> None:
    env: dict[str, str] = {}
    apply_dev_env(env)
    with pytest.raises(ConfigurationError, match="SESSION_SECRET"):
        check_fail_closed(env)


def test_the_dev_host_marks_the_local_stack_and_may_use_dev_env() -> None:
    env: dict[str, str] = {"DEVHOST_LOCAL_STACK": "1"}
    apply_dev_env(env)
    check_fail_closed(env)


@pytest.mark.parametrize("azure_variable", ["WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "WEBSITE_HOSTNAME"])
def test_in_azure_the_mark_does_not_help(azure_variable: str) -> None:
    """dev.env copied into app settings, marker included: App Service's own variables still win."""
    env: dict[str, str] = {"DEVHOST_LOCAL_STACK": "1", azure_variable: "contoso-saas"}
    apply_dev_env(env)
    with pytest.raises(ConfigurationError, match="SESSION_SECRET"):
        check_fail_closed(env)


def test_a_secret_of_ones_own_is_accepted_in_azure() -> None:
    check_fail_closed(start_environment(WEBSITE_INSTANCE_ID="abc123", SSO_CLIENT_SECRET="own-sso-secret"))


def test_the_dev_host_refuses_to_start_on_an_unresolved_reference(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DEVHOST_STATE_DIR": str(tmp_path),
        "SESSION_SECRET": UNRESOLVED,
        "DEVHOST_PORT": "0",
    }
    started = subprocess.run(
        [sys.executable, "-m", "devhost"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert started.returncode == 1
    assert "SESSION_SECRET" in started.stderr
    assert SECRET_URI not in started.stderr + started.stdout


def test_the_public_values_are_dev_envs() -> None:
    """The refused values are exactly the ones the repository publishes in devhost/dev.env."""
    published = read_dev_env({})
    assert {name: published[name] for name in PUBLIC_DEV_VALUES} == PUBLIC_DEV_VALUES
