"""The two kinds of token the app accepts, as policies for the one `TokenValidator`.

- Microsoft's webhook bearer token (R39, R40): only its signature proves the call comes from the
  marketplace. Issued by the publisher's tenant (v1 or v2 issuer), for our audience, with `tid` = that
  tenant, to the marketplace's own app (`azp`/`appid`), within the allowed clock skew.
- The buyer's ID token after sign-in (R8, R10): msal checks `state` and `nonce` but not the signature, so the
  token is checked again before anything in it is trusted. The SSO app is multi-tenant and signs in through
  `/common`, so there is no single expected issuer: `iss` must be `<authority>/<tid>/v2.0` for the `tid`
  inside the same signed token (personal accounts carry the MSA tenant there); audience = the SSO app's
  client id; `oid` and `sub` must be present, since users are keyed by `tid` + `oid`, never by email. The
  nonce is checked per sign-in (`TokenValidator.validate(..., nonce=...)`).
"""

from __future__ import annotations

from shared.config import MARKETPLACE_API_APP_ID, Settings
from shared.identity.tokens import ANY_TENANT, TokenPolicy

ID_TOKEN_REQUIRED_CLAIMS = ("exp", "iat", "aud", "iss", "tid", "oid", "sub")
DEFAULT_ID_TOKEN_LEEWAY_SECONDS = 300


def webhook_policy(
    metadata_url: str,
    audience: str,
    tenant_id: str,
    *,
    caller_app_ids: frozenset[str] = frozenset({MARKETPLACE_API_APP_ID}),
    leeway_seconds: int = 300,
) -> TokenPolicy:
    return TokenPolicy(
        metadata_url=metadata_url,
        audience=audience,
        tenant_id=tenant_id,
        caller_app_ids=caller_app_ids,
        leeway_seconds=leeway_seconds,
    )


def webhook_policy_from_settings(settings: Settings) -> TokenPolicy:
    return webhook_policy(
        settings.webhook_openid_config_url,
        settings.webhook_audience,
        settings.publisher_tenant_id,
        leeway_seconds=settings.webhook_clock_skew_seconds,
    )


def id_token_policy(
    authority: str, client_id: str, *, leeway_seconds: int = DEFAULT_ID_TOKEN_LEEWAY_SECONDS
) -> TokenPolicy:
    """ID tokens of the SSO app `client_id`, signed in through `<authority>/common`."""
    if not authority:
        raise ValueError("authority is required to validate ID tokens")
    return TokenPolicy(
        metadata_url=f"{authority.rstrip('/')}/{ANY_TENANT}/v2.0/.well-known/openid-configuration",
        audience=client_id,
        tenant_id=ANY_TENANT,
        required_claims=ID_TOKEN_REQUIRED_CLAIMS,
        leeway_seconds=leeway_seconds,
    )


def id_token_policy_from_settings(settings: Settings) -> TokenPolicy:
    return id_token_policy(settings.sso_authority, settings.sso_client_id)
