"""OpenID discovery as Entra serves it: the v2 and v1 metadata documents, issuers and tenant segments.

A tenant segment is a tenant GUID or one of the aliases "common", "organizations", "consumers"; multi-tenant
metadata carries the literal `{tenantid}` placeholder in `issuer`, exactly as Entra's does.
"""

from __future__ import annotations

from typing import Any

from sandbox.identities import MSA_TENANT_ID

TENANT_ALIASES = ("common", "organizations", "consumers")
ISSUER_TENANT_PLACEHOLDER = "{tenantid}"
V1_ISSUER_HOST = "https://sts.windows.net"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


def issuer(base_url: str, tenant_id: str) -> str:
    return f"{base_url}/{tenant_id}/v2.0"


def issuer_tenant(tenant: str) -> str:
    """What `issuer` names for a tenant segment: the MSA tenant for consumers, the placeholder for aliases."""
    if tenant == "consumers":
        return MSA_TENANT_ID
    return ISSUER_TENANT_PLACEHOLDER if tenant in TENANT_ALIASES else tenant


def openid_configuration(base_url: str, tenant: str) -> dict[str, Any]:
    """The v2 metadata document for a tenant segment (GUID or alias), as Entra serves it."""
    base = f"{base_url}/{tenant}"
    return {
        "issuer": issuer(base_url, issuer_tenant(tenant)),
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": sorted(OIDC_SCOPES),
        "claims_supported": [
            *("sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "name", "preferred_username"),
            *("email", "oid", "tid", "ver"),
        ],
        "request_uri_parameter_supported": False,
        "tenant_region_scope": None,
        "cloud_instance_name": "sandbox.local",
    }


def openid_configuration_v1(base_url: str, tenant: str) -> dict[str, Any]:
    """The v1 metadata document: what S19's webhook check reads to find `jwks_uri`."""
    base = f"{base_url}/{tenant}"
    return {
        "issuer": f"{V1_ISSUER_HOST}/{issuer_tenant(tenant)}/",
        "authorization_endpoint": f"{base}/oauth2/authorize",
        "token_endpoint": f"{base}/oauth2/token",
        "jwks_uri": f"{base}/discovery/keys",
        "response_types_supported": ["code"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
    }
