"""Settings of the function app, read once from the environment.

Azure Functions exposes application settings (and `local.settings.json` values locally) as environment
variables, so this is the single place that knows their names. Every setting is listed and explained in the
README and in `local.settings.example.json`; a test keeps the three in step.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.domain.retention import DEFAULT_RETENTION_DAYS, MINIMUM_RETENTION_DAYS

# The Microsoft-owned application behind the SaaS Fulfillment and Metering APIs (R43). Not a setting: it is
# the same for every publisher, and a wrong value is the commonest cause of 403s (pitfall P3).
MARKETPLACE_API_APP_ID = "20e940b3-4c77-4b0b-9a53-9e16a1b010a7"
MARKETPLACE_API_SCOPE = f"{MARKETPLACE_API_APP_ID}/.default"
FULFILLMENT_API_VERSION = "2018-08-31"
PUBLIC_ENTRA_AUTHORITY = "https://login.microsoftonline.com"

# Azure leaves an app setting holding the literal reference text when it cannot resolve a Key Vault
# reference (missing access policy, deleted secret): that text is public, so it must never be used as a value.
# App Configuration references behave the same. Searched anywhere in the value, after Unicode compatibility
# folding and without invisible format characters: a pasted byte order mark, zero-width space, quotes or a
# space before "(" make Azure leave the text unresolved just as well, and the text is public all the same.
_REFERENCE = re.compile(r"@\s*microsoft\s*\.\s*(?:keyvault|appconfiguration)\s*\(", re.IGNORECASE)
# Set by `python -m devhost` (never by Azure): the only place where the public values below may be used.
LOCAL_STACK_MARKER = "DEVHOST_LOCAL_STACK"
# Variables the App Service platform sets on every Function App instance; any of them means "in Azure",
# whatever the settings claim. FUNCTIONS_WORKER_RUNTIME is not one: `func start` sets it on a laptop too.
AZURE_HOST_VARIABLES = ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "WEBSITE_HOSTNAME")
# The secrets devhost/dev.env gives the local stack that the app itself trusts. They are in the repository,
# hence public; a test keeps this table equal to dev.env. The sandbox's client secrets are left out on
# purpose: they prove nothing to a real Entra ID, and every test stack uses them.
PUBLIC_DEV_VALUES = {
    "SESSION_SECRET": "dev-only-session-secret-not-for-production-use",
    "DEVHOST_FUNCTION_KEY": "dev-function-key",
}


class ConfigurationError(ValueError):
    """A setting is missing or malformed; raised at first use so the log names the setting."""


def is_unresolved_reference(value: str) -> bool:
    """Whether `value` holds the literal text of a Key Vault or App Configuration reference."""
    folded = unicodedata.normalize("NFKC", value)
    visible = "".join(char for char in folded if unicodedata.category(char) != "Cf")
    return _REFERENCE.search(visible) is not None


def unresolved_key_vault_references(env: Mapping[str, str]) -> list[str]:
    """Names (never values) of the settings that still hold a Key Vault (or App Configuration) reference's
    literal text."""
    return sorted(name for name, value in env.items() if is_unresolved_reference(value))


def is_local_stack(env: Mapping[str, str]) -> bool:
    """True only when the dev host says so and nothing says Azure: unknown surroundings are production."""
    if any(env.get(name, "").strip() for name in AZURE_HOST_VARIABLES):
        return False
    return _bool(env.get("DEVHOST_LOCAL_STACK"), False)


def public_dev_values_in_use(env: Mapping[str, str]) -> list[str]:
    """Names of the settings that hold one of dev.env's public secrets."""
    return sorted(name for name, public in PUBLIC_DEV_VALUES.items() if env.get(name, "").strip() == public)


def check_fail_closed(env: Mapping[str, str] | None = None) -> None:
    """Refuses to start on a setting that would silently run with a public secret.

    Raised at start (function_app import, the composition root, the dev host) so a broken deployment
    stops instead of signing cookies with text anyone can read. Messages name settings, never values.
    """
    env = os.environ if env is None else env
    unresolved = unresolved_key_vault_references(env)
    if unresolved:
        raise ConfigurationError(
            "unresolved Key Vault or App Configuration reference in "
            + ", ".join(unresolved)
            + ": grant the Function App's identity access to the vault, or fix the reference"
        )
    public = public_dev_values_in_use(env)
    if public and not is_local_stack(env):
        raise ConfigurationError(
            "the local stack's public value (devhost/dev.env) is set outside the local stack for "
            + ", ".join(public)
            + ": set a secret of your own"
        )


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from exc


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Every value the app reads. Build with `Settings.from_env()`; tests pass their own mapping."""

    # --- Publisher identity: the single-tenant Entra app registered in Partner Center (R17, R43-R47).
    publisher_tenant_id: str = ""
    publisher_client_id: str = ""
    # secret | certificate | workload_identity | managed_identity_federated
    publisher_credential_kind: str = "secret"
    publisher_client_secret: str = field(default="", repr=False)
    publisher_certificate_path: str = ""
    managed_identity_client_id: str = ""
    entra_authority_host: str = PUBLIC_ENTRA_AUTHORITY

    # --- Fulfillment API (R18-R20, R80).
    fulfillment_base_url: str = "https://marketplaceapi.microsoft.com/api"
    fulfillment_connect_timeout: float = 3.05
    fulfillment_read_timeout: float = 10.0
    fulfillment_max_attempts: int = 5
    fulfillment_max_retry_seconds: float = 30.0

    # --- Webhook authentication (R39).
    webhook_audience: str = ""
    webhook_openid_config_url: str = ""
    webhook_max_body_bytes: int = 64 * 1024
    webhook_clock_skew_seconds: int = 300

    # --- Table Storage.
    storage_connection_string: str = field(default="", repr=False)
    storage_account_url: str = ""
    table_subscriptions: str = "subscriptions"
    table_operations: str = "operations"
    table_seats: str = "seats"
    table_users: str = "users"

    # --- Queue: Azure Service Bus in Azure, a local stand-in under the dev host.
    queue_backend: str = "servicebus"  # servicebus | local (dev host) | memory (benchmarks)
    servicebus_connection_string: str = field(default="", repr=False)
    servicebus_namespace: str = ""
    servicebus_queue: str = "saas-events"
    servicebus_deadletter_queue: str = "saas-events-deadletter"
    local_queue_path: str = ".local/queue.sqlite3"

    # --- Publisher policy for changes Microsoft announces (R34, R52).
    policy_block_downgrades: bool = False
    policy_plan_order: tuple[str, ...] = ()
    policy_refuse_quantity_below_assigned: bool = True
    provisioning_hook: str = ""

    # --- Buyer sign-in: the multitenant SSO app of the landing page (R8-R11, R17).
    sso_client_id: str = ""
    sso_client_secret: str = field(default="", repr=False)
    sso_authority: str = PUBLIC_ENTRA_AUTHORITY
    graph_base_url: str = "https://graph.microsoft.com/v1.0"

    # --- Pages.
    public_base_url: str = "http://127.0.0.1:7071"
    session_secret: str = field(default="", repr=False)
    # Absolute: counted from sign-in, never extended by activity; only a new sign-in starts a new session.
    session_lifetime_seconds: int = 8 * 3600
    # The operations console wants a sign-in at most this old: its roles are read from the ID token at
    # sign-in, so this bounds how long a role removed in Entra still opens it.
    console_signin_max_age_seconds: int = 3600
    license_cache_seconds: int = 10
    log_level: str = "INFO"

    # --- Data lifecycle: days an Unsubscribed subscription keeps its personal data (R56, R58).
    retention_days: int = DEFAULT_RETENTION_DAYS

    # --- Telemetry: OpenTelemetry to Application Insights only when a connection string is set
    # (shared.telemetry); Entra ID auth when the authentication string says Authorization=AAD.
    applicationinsights_connection_string: str = field(default="", repr=False)
    applicationinsights_authentication_string: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        tenant = env.get("PUBLISHER_TENANT_ID", "").strip()
        client_id = env.get("PUBLISHER_CLIENT_ID", "").strip()
        authority = env.get("ENTRA_AUTHORITY_HOST", "").strip().rstrip("/") or PUBLIC_ENTRA_AUTHORITY
        return cls(
            publisher_tenant_id=tenant,
            publisher_client_id=client_id,
            publisher_credential_kind=env.get("PUBLISHER_CREDENTIAL_KIND", "secret").strip().lower(),
            publisher_client_secret=env.get("PUBLISHER_CLIENT_SECRET", ""),
            publisher_certificate_path=env.get("PUBLISHER_CERTIFICATE_PATH", "").strip(),
            managed_identity_client_id=env.get("MANAGED_IDENTITY_CLIENT_ID", "").strip(),
            entra_authority_host=authority,
            fulfillment_base_url=(
                env.get("FULFILLMENT_API_BASE_URL", "").strip().rstrip("/") or cls.fulfillment_base_url
            ),
            fulfillment_connect_timeout=_float(env, "FULFILLMENT_CONNECT_TIMEOUT", 3.05),
            fulfillment_read_timeout=_float(env, "FULFILLMENT_READ_TIMEOUT", 10.0),
            fulfillment_max_attempts=_int(env, "FULFILLMENT_MAX_ATTEMPTS", 5),
            fulfillment_max_retry_seconds=_float(env, "FULFILLMENT_MAX_RETRY_SECONDS", 30.0),
            webhook_audience=env.get("WEBHOOK_AUDIENCE", "").strip() or client_id,
            webhook_openid_config_url=(
                env.get("WEBHOOK_OPENID_CONFIG_URL", "").strip()
                or f"{authority}/{tenant}/v2.0/.well-known/openid-configuration"
            ),
            webhook_max_body_bytes=_int(env, "WEBHOOK_MAX_BODY_BYTES", 64 * 1024),
            webhook_clock_skew_seconds=_int(env, "WEBHOOK_CLOCK_SKEW_SECONDS", 300),
            storage_connection_string=env.get("STORAGE_CONNECTION_STRING", ""),
            storage_account_url=env.get("STORAGE_ACCOUNT_URL", "").strip(),
            table_subscriptions=env.get("TABLE_SUBSCRIPTIONS", "").strip() or "subscriptions",
            table_operations=env.get("TABLE_OPERATIONS", "").strip() or "operations",
            table_seats=env.get("TABLE_SEATS", "").strip() or "seats",
            table_users=env.get("TABLE_USERS", "").strip() or "users",
            queue_backend=env.get("QUEUE_BACKEND", "servicebus").strip().lower(),
            servicebus_connection_string=env.get("ServiceBusConnection", ""),
            servicebus_namespace=env.get("ServiceBusConnection__fullyQualifiedNamespace", "").strip(),
            servicebus_queue=env.get("SERVICEBUS_QUEUE", "").strip() or "saas-events",
            servicebus_deadletter_queue=(
                env.get("SERVICEBUS_DEADLETTER_QUEUE", "").strip() or "saas-events-deadletter"
            ),
            local_queue_path=env.get("LOCAL_QUEUE_PATH", "").strip() or ".local/queue.sqlite3",
            policy_block_downgrades=_bool(env.get("POLICY_BLOCK_DOWNGRADES"), False),
            policy_plan_order=_list(env.get("POLICY_PLAN_ORDER")),
            policy_refuse_quantity_below_assigned=_bool(
                env.get("POLICY_REFUSE_QUANTITY_BELOW_ASSIGNED"), True
            ),
            provisioning_hook=env.get("PROVISIONING_HOOK", "").strip(),
            sso_client_id=env.get("SSO_CLIENT_ID", "").strip(),
            sso_client_secret=env.get("SSO_CLIENT_SECRET", ""),
            sso_authority=env.get("SSO_AUTHORITY", "").strip().rstrip("/") or PUBLIC_ENTRA_AUTHORITY,
            graph_base_url=env.get("GRAPH_BASE_URL", "").strip().rstrip("/") or cls.graph_base_url,
            public_base_url=env.get("PUBLIC_BASE_URL", "").strip().rstrip("/") or "http://127.0.0.1:7071",
            session_secret=env.get("SESSION_SECRET", ""),
            session_lifetime_seconds=_int(env, "SESSION_LIFETIME_SECONDS", 8 * 3600),
            console_signin_max_age_seconds=_int(env, "CONSOLE_SIGNIN_MAX_AGE_SECONDS", 3600),
            license_cache_seconds=_int(env, "LICENSE_CACHE_SECONDS", 10),
            log_level=env.get("LOG_LEVEL", "INFO").strip().upper(),
            retention_days=_int(env, "RETENTION_DAYS", DEFAULT_RETENTION_DAYS),
            applicationinsights_connection_string=env.get(
                "APPLICATIONINSIGHTS_CONNECTION_STRING", ""
            ).strip(),
            applicationinsights_authentication_string=(
                env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "").strip()
            ),
        )

    def validate(self) -> None:
        """Fail fast on combinations that cannot work (called by the composition root)."""
        if self.queue_backend not in {"servicebus", "local", "memory"}:
            raise ConfigurationError("QUEUE_BACKEND must be 'servicebus', 'local' or 'memory'")
        if not (self.storage_connection_string or self.storage_account_url):
            raise ConfigurationError("set STORAGE_CONNECTION_STRING or STORAGE_ACCOUNT_URL")
        if len(self.session_secret) < 32:
            raise ConfigurationError("SESSION_SECRET must be at least 32 characters (it signs cookies)")
        if self.session_lifetime_seconds < 1:
            raise ConfigurationError("SESSION_LIFETIME_SECONDS must be at least 1")
        if self.console_signin_max_age_seconds < 60:
            raise ConfigurationError("CONSOLE_SIGNIN_MAX_AGE_SECONDS must be at least 60")
        if not 0 <= self.license_cache_seconds <= 60:
            # Beyond the answer's own max-age a revoked seat would outlive what the caller was promised.
            raise ConfigurationError("LICENSE_CACHE_SECONDS must be between 0 and 60")
        if self.retention_days < MINIMUM_RETENTION_DAYS:
            # R58: Microsoft requires the data of an Unsubscribed subscription to be kept at least 7 days.
            raise ConfigurationError(
                f"RETENTION_DAYS must be at least {MINIMUM_RETENTION_DAYS} (Microsoft's rule R58)"
            )
        if "#" in self.public_base_url:
            # R3: Microsoft cannot send buyers to a landing URL that contains '#'.
            raise ConfigurationError("PUBLIC_BASE_URL must not contain '#'")
        if urlsplit(self.fulfillment_base_url).scheme not in {"https", "http"}:
            raise ConfigurationError("FULFILLMENT_API_BASE_URL must be an http(s) URL")


def page_links(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The publisher's name and help links for every page's layout. A link nobody configured is left out of
    the pages rather than pointing somewhere that does not exist."""
    env = os.environ if env is None else env
    return {
        "product_name": env.get("PRODUCT_NAME", "").strip() or "SaaS subscription",
        "support_url": env.get("SUPPORT_URL", "").strip(),
        "docs_url": env.get("DOCS_URL", "").strip(),
    }
