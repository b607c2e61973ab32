"""The app's own credential (Table Storage, Service Bus) asks for the user-assigned identity it is given.

Azure's App Service identity endpoint is played by a loopback HTTP server that records what it is asked; the
credential is the composition root's, built from settings as in Azure.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.app_context import services
from tests.support.identity_endpoint import identity_endpoint as loopback_identity_endpoint


@pytest.fixture
def identity_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, list[str]]]]:
    with loopback_identity_endpoint(monkeypatch) as asked:
        yield asked


def test_the_app_credential_asks_for_the_configured_user_assigned_identity(
    identity_endpoint: list[dict[str, list[str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MANAGED_IDENTITY_CLIENT_ID", "11111111-2222-3333-4444-555555555555")

    services().azure_credential.get_token("https://storage.azure.com/.default")

    assert identity_endpoint, "the credential never asked the identity endpoint"
    assert identity_endpoint[-1].get("client_id") == ["11111111-2222-3333-4444-555555555555"]


def test_without_a_client_id_the_system_assigned_identity_is_asked_for(
    identity_endpoint: list[dict[str, list[str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MANAGED_IDENTITY_CLIENT_ID", raising=False)

    services().azure_credential.get_token("https://storage.azure.com/.default")

    assert identity_endpoint
    assert "client_id" not in identity_endpoint[-1]
