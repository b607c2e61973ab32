"""Which certificate authorities outbound HTTPS calls trust: one decision for every client the app uses.

The app talks HTTPS through three stacks (urllib for OpenID metadata and signing keys, requests for the
Fulfillment API and Graph, msal for sign-in), and each has its own idea of the default trust store. Asking
this module everywhere means a CA bundle set for the local sandbox (or a corporate proxy) is honoured by all
of them alike, instead of by whichever stack happens to read the variable.
"""

from __future__ import annotations

import os
import ssl


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
