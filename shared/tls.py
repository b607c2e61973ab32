"""Which certificate authorities outbound HTTPS calls trust: one decision for every client the app uses.

The app talks HTTPS through three stacks (urllib for OpenID metadata and signing keys, requests for the
Fulfillment API and Graph, msal for sign-in), and each has its own idea of the default trust store. Asking
this module everywhere means a CA bundle set for the local sandbox (or a corporate proxy) is honoured by all
of them alike, instead of by whichever stack happens to read the variable. The same place decides whether
a requests session scans the environment for proxies at all (`configure_session`).
"""

from __future__ import annotations

import os
import ssl
import urllib.request
from typing import Any

# requests' Session has `trust_env` and `verify`; typed loosely so this utility imports no HTTP stack.
_Session = Any
# Connections a client keeps open per host. The worker runs host.json's 16 sessions at once, each with up to
# two decision reads beside it, and the HTTP host up to 100 requests: with requests' default of 10, a busy
# instance threw connections away ("Connection pool is full") and shook hands again for the next call.
POOL_CONNECTIONS = 64


def tls_verify() -> str | bool:
    """The `verify=` value for requests and msal: a CA bundle path, else True (the client's own default).

    `REQUESTS_CA_BUNDLE` first (the variable requests itself reads), then `SSL_CERT_FILE` (the one OpenSSL
    reads). Read at each call, never cached: tests and the dev host point it at a freshly generated CA.
    """
    bundle = os.environ.get("REQUESTS_CA_BUNDLE", "").strip() or os.environ.get("SSL_CERT_FILE", "").strip()
    return bundle or True


def ssl_context() -> ssl.SSLContext:
    """An `ssl.SSLContext` (for urllib) that trusts exactly what `tls_verify()` says requests should trust."""
    verify = tls_verify()
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)


def proxy_in_environment() -> bool:
    """Whether the environment names a proxy (`HTTPS_PROXY`, `http_proxy`, `NO_PROXY`, ... as urllib reads
    them, any case). Read at each call: cheap next to building a client, and tests set these variables."""
    return bool(urllib.request.getproxies())


def configure_session(session: _Session) -> _Session:
    """Sets a requests Session's trust store, and turns off its environment scan when no proxy is set.

    With `trust_env` on, requests reads every environment variable twice per request looking for proxy
    and CA settings (hundreds of µs with an Azure-sized environment). The CA bundle is set here explicitly,
    so the scan only matters for a proxy, and is kept exactly when the environment names one.
    """
    from requests.adapters import HTTPAdapter

    session.verify = tls_verify()
    session.trust_env = proxy_in_environment()
    adapter = HTTPAdapter(pool_maxsize=POOL_CONNECTIONS)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def azure_transport_settings() -> dict[str, Any]:
    """The same decisions for an Azure SDK client: its transport over a session configured as above.

    azure-core configures only a session it creates itself, so the one given here carries everything: trust
    store, proxy decision and pool size. Retries stay azure-core's own policy (requests' adapter retries
    nothing by default)."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    session = configure_session(requests.Session())
    return {
        "transport": RequestsTransport(session=session, session_owner=False, connection_verify=tls_verify())
    }
