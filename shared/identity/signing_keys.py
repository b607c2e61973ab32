"""The one cache of token signing keys: OpenID metadata and JWKS per URL, shared by every token validator.

Both kinds of token the app accepts (Microsoft's webhook tokens and buyers' ID tokens) are signed with keys
Entra ID publishes in a JWKS, found through OpenID metadata. One `SigningKeys` per process (the composition
root owns it) holds, for each URL, the last document fetched, so two validators reading the same JWKS share
both the keys and the refresh budget.

The refresh rule, the same for every caller:
- a key set older than `lifespan` is fetched again before use: a key Entra has removed stops being trusted
  within that time (metadata likewise after `metadata_lifespan`);
- a `kid` missing from a fresh key set (a rotation Entra announced since, or a forged kid) triggers one
  refetch, unless the last fetch of that URL was less than `refresh_cooldown` ago, so a flood of made-up
  kids costs Entra at most one request per cooldown;
- a failed fetch is not retried before `refresh_cooldown` either: during an outage each call fails at once
  instead of waiting out the HTTP timeout again.
URLs only ever come from configuration and metadata, never from a token (no `jku`/`x5u`), so the number of
entries is bounded by the configuration.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

import jwt

from shared.logs import get_logger
from shared.tls import ssl_context as default_ssl_context

log = get_logger(__name__)

HTTP_TIMEOUT_SECONDS = 5.0
# Entra announces a new key in the JWKS well before signing with it, so an hour-old key set is fresh enough;
# a removed key stops being trusted within the hour.
JWKS_LIFESPAN_SECONDS = 3600.0
# The metadata names the JWKS URL and issuer, which change far less often than keys.
METADATA_LIFESPAN_SECONDS = 24 * 3600.0
REFRESH_COOLDOWN_SECONDS = 30.0


class SigningKeysUnavailableError(Exception):
    """The OpenID metadata or JWKS could not be fetched: our side is at fault, so the caller should retry."""


class UnknownSigningKeyError(Exception):
    """The key set (fresh, or refreshed as far as the cooldown allows) has no key with the token's kid."""


@dataclass(frozen=True)
class OpenIdMetadata:
    """The two things a validator needs from an authority's metadata document."""

    issuer: str
    jwks_uri: str


@dataclass
class _Entry:
    """One URL's last good document and when it, or the last attempt, was fetched (monotonic seconds)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    value: Any = None
    fetched_at: float | None = None
    attempted_at: float | None = None


class SigningKeys:
    """Thread-safe: one lock per URL, held while fetching, so concurrent callers wait for one fetch."""

    def __init__(
        self,
        *,
        lifespan_seconds: float = JWKS_LIFESPAN_SECONDS,
        metadata_lifespan_seconds: float = METADATA_LIFESPAN_SECONDS,
        refresh_cooldown_seconds: float = REFRESH_COOLDOWN_SECONDS,
        http_timeout_seconds: float = HTTP_TIMEOUT_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lifespan = lifespan_seconds
        self._metadata_lifespan = metadata_lifespan_seconds
        self._cooldown = refresh_cooldown_seconds
        self._timeout = http_timeout_seconds
        self._ssl_context = ssl_context or default_ssl_context()
        self._clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._entries_lock = threading.Lock()

    def metadata(self, metadata_url: str) -> OpenIdMetadata:
        """The authority's metadata, fetched at most once per `metadata_lifespan` (or cooldown on failure)."""
        entry = self._entry("metadata", metadata_url)
        with entry.lock:
            if not self._fresh(entry, self._metadata_lifespan):
                self._refresh(entry, "OpenID metadata", lambda: self._fetch_metadata(metadata_url))
            return entry.value  # type: ignore[no-any-return]

    def signing_key(self, metadata_url: str, kid: str) -> jwt.PyJWK:
        """The key named `kid` in the JWKS the metadata names; UnknownSigningKeyError when there is none."""
        jwks_uri = self.metadata(metadata_url).jwks_uri
        entry = self._entry("jwks", jwks_uri)
        with entry.lock:
            expired = not self._fresh(entry, self._lifespan)
            if expired or (kid not in entry.value and self._cooled_down(entry)):
                self._refresh(entry, "JWKS", lambda: self._fetch_keys(jwks_uri))
            key = entry.value.get(kid)
        if key is None:
            raise UnknownSigningKeyError(kid)
        return key  # type: ignore[no-any-return]

    def _entry(self, kind: str, url: str) -> _Entry:
        # Entries are only ever added, so a plain read finds any that exists; the lock (and a new entry,
        # with its own lock) is for the first call per URL only.
        entry = self._entries.get((kind, url))
        if entry is not None:
            return entry
        with self._entries_lock:
            return self._entries.setdefault((kind, url), _Entry())

    def _fresh(self, entry: _Entry, lifespan: float) -> bool:
        return entry.fetched_at is not None and self._clock() - entry.fetched_at < lifespan

    def _cooled_down(self, entry: _Entry) -> bool:
        return entry.attempted_at is None or self._clock() - entry.attempted_at >= self._cooldown

    def _refresh(self, entry: _Entry, what: str, fetch: Callable[[], Any]) -> None:
        """Replaces the entry's value by a fresh fetch; a failure leaves it as it was (and expired)."""
        failed_last_time = entry.attempted_at is not None and entry.attempted_at != entry.fetched_at
        if failed_last_time and not self._cooled_down(entry):
            raise SigningKeysUnavailableError(f"{what} failed recently; not asking again yet")
        entry.attempted_at = self._clock()
        try:
            entry.value = fetch()
        except SigningKeysUnavailableError as exc:
            log.warning("%s unavailable", what, extra={"error": str(exc)})
            raise
        entry.fetched_at = entry.attempted_at

    def _fetch_metadata(self, url: str) -> OpenIdMetadata:
        document = self._fetch_json(url, "OpenID metadata")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not _acceptable_keys_url(jwks_uri, url):
            raise SigningKeysUnavailableError("OpenID metadata unavailable: it names no usable jwks_uri")
        return OpenIdMetadata(issuer=str(document.get("issuer", "")), jwks_uri=jwks_uri)

    def _fetch_keys(self, url: str) -> dict[str, jwt.PyJWK]:
        document = self._fetch_json(url, "JWKS")
        try:
            key_set = jwt.PyJWKSet.from_dict(document)
        except jwt.PyJWKSetError as exc:
            raise SigningKeysUnavailableError(f"JWKS holds no usable key: {exc}") from exc
        return {key.key_id: key for key in key_set.keys if key.key_id}

    def _fetch_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            if urlsplit(url).scheme not in {"http", "https"}:
                raise ValueError("the URL must be http(s)")
            request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked above
            opener = urllib.request.build_opener(
                _NoRedirects(), urllib.request.HTTPSHandler(context=self._ssl_context)
            )
            with opener.open(request, timeout=self._timeout) as response:
                document = json.load(response)
        except (URLError, OSError, http.client.HTTPException, ValueError) as exc:
            raise SigningKeysUnavailableError(f"{what} unavailable: {exc}") from exc
        if not isinstance(document, dict):
            raise SigningKeysUnavailableError(f"{what} unavailable: the document is not a JSON object")
        return document


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Entra answers metadata and keys directly; a redirect could only lead somewhere less trusted."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _acceptable_keys_url(jwks_uri: str, metadata_url: str) -> bool:
    """https always; plain http only when the metadata itself came over http (a local stand-in)."""
    scheme = urlsplit(jwks_uri).scheme
    return scheme == "https" or (scheme == "http" and urlsplit(metadata_url).scheme == "http")
