"""Outbound HTTP (shared/tls.py): an explicit CA bundle, and the environment scanned only for a proxy."""

from __future__ import annotations

import pytest
import requests

from shared.tls import azure_transport_settings, configure_session

_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_without_a_proxy_the_session_skips_the_environment_but_keeps_the_ca_bundle(
    no_proxy_environment: pytest.MonkeyPatch, tmp_path: object
) -> None:
    no_proxy_environment.setenv("REQUESTS_CA_BUNDLE", "/etc/example-ca.pem")
    session = configure_session(requests.Session())
    assert session.trust_env is False
    # requests reads REQUESTS_CA_BUNDLE only with trust_env on: the bundle must be set explicitly.
    assert session.verify == "/etc/example-ca.pem"
    transport = azure_transport_settings()["transport"]
    assert transport.session.trust_env is False
    assert transport.connection_config.verify == "/etc/example-ca.pem"


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "NO_PROXY"])
def test_a_proxy_in_the_environment_keeps_the_scan_on(
    no_proxy_environment: pytest.MonkeyPatch, variable: str
) -> None:
    no_proxy_environment.setenv(variable, "http://127.0.0.1:3128")
    assert configure_session(requests.Session()).trust_env is True
    assert azure_transport_settings()["transport"].session.trust_env is True


def _pool_size(session: requests.Session, url: str) -> int:
    return int(session.get_adapter(url).poolmanager.connection_pool_kw["maxsize"])  # type: ignore[attr-defined]


def test_clients_keep_a_connection_for_every_call_the_app_makes_at_once(
    no_proxy_environment: pytest.MonkeyPatch,
) -> None:
    # The worker's sessions (host.json) each with its two decision reads: with requests' default pool of 10,
    # a burst threw connections away and shook hands again ("Connection pool is full").
    from devhost.queue_runner import max_concurrent_sessions

    needed = max_concurrent_sessions() * 3
    fulfillment = configure_session(requests.Session())
    tables = azure_transport_settings()["transport"].session
    for session in (fulfillment, tables):
        assert _pool_size(session, "https://marketplaceapi.microsoft.com/api") >= needed
        assert _pool_size(session, "http://127.0.0.1:10002/devstoreaccount1") >= needed
