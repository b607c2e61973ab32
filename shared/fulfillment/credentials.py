"""The publisher app's Entra ID credential for the marketplace APIs, chosen by PUBLISHER_CREDENTIAL_KIND.

All kinds authenticate as the single-tenant app registered in Partner Center (R43-R45); they differ only in
what proves it: a client secret, a certificate, a managed identity's federated token (R47: no secret to
rotate), or a Kubernetes workload identity token file. azure-identity caches tokens and refreshes them
before expiry (R46), so the client may ask for a token on every attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from azure.core.credentials import AccessToken, TokenCredential
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from shared.config import PUBLIC_ENTRA_AUTHORITY, ConfigurationError, Settings
from shared.logs import get_logger
from shared.tls import azure_transport_settings

# The audience Entra expects on a managed identity token used as a federated client assertion.
FEDERATION_AUDIENCE_SCOPE = "api://AzureADTokenExchange/.default"


class CredentialKind(StrEnum):
    """How the publisher's app signs in to Entra ID (the PUBLISHER_CREDENTIAL_KIND setting)."""

    CLIENT_SECRET = "secret"  # noqa: S105 -- the name of a kind of credential, not a credential
    CERTIFICATE = "certificate"
    MANAGED_IDENTITY_FEDERATED = "managed_identity_federated"
    WORKLOAD_IDENTITY = "workload_identity"

    @classmethod
    def parse(cls, value: str) -> CredentialKind | None:
        """The kind a setting names, in any case and with surrounding spaces; None for anything else."""
        name = value.strip().lower()
        return next((kind for kind in cls if kind.value == name), None)


_log = get_logger(__name__)


def _require(value: str, setting: str, kind: str) -> str:
    if not value.strip():
        raise ConfigurationError(f"{setting} must be set when PUBLISHER_CREDENTIAL_KIND is {kind!r}")
    return value


def _authority_options(settings: Settings) -> dict[str, Any]:
    """authority, plus no instance discovery for a private authority (the local sandbox's Entra stand-in),
    over the app's own transport (`_transport`)."""
    authority = settings.entra_authority_host.rstrip("/")
    options: dict[str, Any] = {"authority": authority, **_transport()}
    if authority.lower() != PUBLIC_ENTRA_AUTHORITY:
        # MSAL would otherwise ask the public cloud whether this authority is known, and refuse it.
        options["disable_instance_discovery"] = True
    return options


def _transport() -> dict[str, Any]:
    """The app's transport (shared.tls): its trust store, proxy decision and pool size. The SDK's default
    pool keeps 10 connections, so the worker's 16 sessions asking for a first token at once each threw one
    away ("Connection pool is full") at every cold start."""
    return azure_transport_settings()


def _secret(settings: Settings) -> TokenCredential:
    secret = _require(settings.publisher_client_secret, "PUBLISHER_CLIENT_SECRET", "secret")
    return ClientSecretCredential(
        settings.publisher_tenant_id, settings.publisher_client_id, secret, **_authority_options(settings)
    )


def _certificate(settings: Settings) -> TokenCredential:
    path = _require(settings.publisher_certificate_path, "PUBLISHER_CERTIFICATE_PATH", "certificate")
    try:
        return CertificateCredential(
            settings.publisher_tenant_id,
            settings.publisher_client_id,
            certificate_path=path,
            **_authority_options(settings),
        )
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"PUBLISHER_CERTIFICATE_PATH {path!r} is not a readable PEM/PFX: {exc}"
        ) from exc


def _managed_identity_assertion(settings: Settings) -> Callable[[], str]:
    # Not the app's transport: azure-identity gives the IMDS probe a 2 s connection timeout only on a
    # transport it builds itself, and with ours an unreachable IMDS held a cold start for minutes. Its token
    # is cached, so its own small pool costs nothing after the first call.
    managed_identity = ManagedIdentityCredential(client_id=settings.managed_identity_client_id or None)

    def assertion() -> str:
        # The SDK's logging decorator hides get_token's declared AccessToken from type checkers.
        token: AccessToken = managed_identity.get_token(FEDERATION_AUDIENCE_SCOPE)
        return token.token

    return assertion


def _managed_identity_federated(settings: Settings) -> TokenCredential:
    # ClientAssertionCredential talks to the token endpoint directly (no MSAL instance discovery).
    return ClientAssertionCredential(
        settings.publisher_tenant_id,
        settings.publisher_client_id,
        _managed_identity_assertion(settings),
        authority=settings.entra_authority_host.rstrip("/"),
        **_transport(),
    )


def _workload_identity(settings: Settings) -> TokenCredential:
    try:
        return WorkloadIdentityCredential(
            tenant_id=settings.publisher_tenant_id,
            client_id=settings.publisher_client_id,
            authority=settings.entra_authority_host.rstrip("/"),
            **_transport(),
        )
    except ValueError as exc:
        # Raised when AZURE_FEDERATED_TOKEN_FILE is not set: the pod is not configured for workload identity.
        raise ConfigurationError(
            f"PUBLISHER_CREDENTIAL_KIND 'workload_identity' cannot be used: {exc}"
        ) from exc


_BUILDERS: dict[CredentialKind, Callable[[Settings], TokenCredential]] = {
    CredentialKind.CLIENT_SECRET: _secret,
    CredentialKind.CERTIFICATE: _certificate,
    CredentialKind.MANAGED_IDENTITY_FEDERATED: _managed_identity_federated,
    CredentialKind.WORKLOAD_IDENTITY: _workload_identity,
}


def build_credential(settings: Settings) -> TokenCredential:
    """The TokenCredential for `settings.publisher_credential_kind`; ConfigurationError when unusable."""
    kind = settings.publisher_credential_kind.strip().lower()
    try:
        credential = _build(kind, settings)
    except ConfigurationError as exc:
        _log.error("publisher credential not built", extra={"credential_kind": kind, "reason": str(exc)})
        raise
    _log.info(
        "publisher credential built",
        extra={"credential_kind": kind, "credential_type": type(credential).__name__},
    )
    return credential


def _build(kind: str, settings: Settings) -> TokenCredential:
    known = CredentialKind.parse(kind)
    if known is None:
        raise ConfigurationError(
            f"PUBLISHER_CREDENTIAL_KIND must be one of {', '.join(CredentialKind)}; got {kind!r}"
        )
    builder = _BUILDERS[known]
    _require(settings.publisher_tenant_id, "PUBLISHER_TENANT_ID", kind)
    _require(settings.publisher_client_id, "PUBLISHER_CLIENT_ID", kind)
    return builder(settings)
