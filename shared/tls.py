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
    session.verify = tls_verify()
    session.trust_env = proxy_in_environment()
    return session


def azure_transport_settings() -> dict[str, Any]:
    """The same decision as keyword arguments for an Azure SDK client (azure-core's RequestsTransport)."""
    return {"connection_verify": tls_verify(), "use_env_settings": proxy_in_environment()}
