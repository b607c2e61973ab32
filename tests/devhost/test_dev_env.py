"""dev.env fills what the environment leaves unset, follows the stack's ports and matches the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost import PROJECT_ROOT, apply_dev_env, read_dev_env
from shared.config import Settings


def test_defaults_point_at_the_documented_ports() -> None:
    settings = read_dev_env({})
    assert "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;" in settings["STORAGE_CONNECTION_STRING"]
    assert settings["FULFILLMENT_API_BASE_URL"] == "http://127.0.0.1:7080/api"
    assert settings["ENTRA_AUTHORITY_HOST"] == "https://127.0.0.1:7443"
    assert settings["PUBLIC_BASE_URL"] == "http://127.0.0.1:7071"
    assert settings["QUEUE_BACKEND"] == "local"
    assert settings["SERVICEBUS_QUEUE"] == "saas-events"
    assert settings["LOCAL_QUEUE_PATH"] == str(PROJECT_ROOT / ".local" / "queue.sqlite3")
    assert settings["REQUESTS_CA_BUNDLE"] == str(PROJECT_ROOT / ".local" / "sandbox" / "tls" / "ca.pem")


def test_moved_ports_and_data_folder_move_every_url(tmp_path: Path) -> None:
    settings = read_dev_env(
        {
            "AZURITE_PORT": "21002",
            "SANDBOX_HTTP_PORT": "21080",
            "SANDBOX_HTTPS_PORT": "21443",
            "DEVHOST_PORT": "21071",
            "DEVHOST_STATE_DIR": str(tmp_path),
        }
    )
    assert "127.0.0.1:21002" in settings["STORAGE_CONNECTION_STRING"]
    assert settings["FULFILLMENT_API_BASE_URL"] == "http://127.0.0.1:21080/api"
    assert settings["WEBHOOK_OPENID_CONFIG_URL"].startswith("https://127.0.0.1:21443/")
    assert settings["PUBLIC_BASE_URL"] == "http://127.0.0.1:21071"
    assert settings["LOCAL_QUEUE_PATH"] == str(tmp_path / "queue.sqlite3")


def test_the_environment_wins_over_dev_env() -> None:
    environ = {"QUEUE_BACKEND": "memory", "LOG_LEVEL": ""}
    apply_dev_env(environ)
    assert environ["QUEUE_BACKEND"] == "memory"
    assert environ["LOG_LEVEL"] == "INFO", "an empty value counts as unset"
    assert environ["PUBLISHER_CLIENT_SECRET"] == "sandbox-publisher-secret"


def test_the_settings_it_makes_are_valid() -> None:
    environ: dict[str, str] = {}
    apply_dev_env(environ)
    settings = Settings.from_env(environ)
    settings.validate()
    assert settings.queue_backend == "local"
    assert settings.webhook_audience == settings.publisher_client_id


def test_the_identities_are_the_sandbox_example_ones() -> None:
    identities = json.loads((PROJECT_ROOT / "sandbox" / "identities.example.json").read_text())
    publisher, sso = identities["publisher"], identities["sso_apps"][0]
    settings = read_dev_env({})
    assert settings["PUBLISHER_TENANT_ID"] == publisher["tenant_id"]
    assert settings["PUBLISHER_CLIENT_ID"] == publisher["client_id"]
    assert settings["PUBLISHER_CLIENT_SECRET"] == publisher["client_secret"]
    assert settings["WEBHOOK_AUDIENCE"] == publisher["client_id"]
    assert f"/{publisher['tenant_id']}/v2.0/" in settings["WEBHOOK_OPENID_CONFIG_URL"]
    assert (settings["SSO_CLIENT_ID"], settings["SSO_CLIENT_SECRET"]) == (
        sso["client_id"],
        sso["client_secret"],
    )
    assert f"{settings['PUBLIC_BASE_URL']}/api/auth/callback" in sso["redirect_uris"]


def test_an_unknown_placeholder_names_the_line(tmp_path: Path) -> None:
    env_file = tmp_path / "dev.env"
    env_file.write_text("# comment\nA=1\nB=${NOPE}\n")
    with pytest.raises(ValueError, match=r"dev.env:3: unknown placeholder \$\{NOPE\}"):
        read_dev_env({}, env_file)
