"""Tokens that passed full validation, remembered for a short while so a repeated one skips the RSA check.

Microsoft's webhook client reuses one Entra access token for up to an hour, so a burst of hundreds of
webhooks carries the same bytes, and each full validation is mostly one RSA signature check. After a token
passes every rule, its claims are kept here, keyed by the SHA-256 digest of the token (never the token
itself: this memory holds no bearer credential), with what it was verified against (its basis: the signing
key and the validator's reading of the metadata document, as the objects the caches hold).

A hit is no blank cheque; `TokenValidator` uses it only when all of these still hold:
- the token's `kid` still names, in the current key set (the same `SigningKeys` lookup, refresh rule and
  lifespan as the full path), the very key object the signature was checked with, and the metadata (which
  names the accepted issuers) is the same document: a key Entra removes stops being accepted as soon as
  the key set is refreshed, and any refresh of either starts every token afresh;
- `exp`, `nbf` and `iat` are checked again against the clock with the policy's leeway, as PyJWT does;
- the entry is younger than `max_age_seconds` (5 minutes by default), whatever the token's own lifetime.
Only successes are stored, so a forged or refused token never enters and is validated in full every time;
a token differing in one byte has another digest. The store is per process and bounded (`max_entries`,
256 by default, least recently used evicted first), so a flood of distinct valid tokens cannot grow it.
Thread-safe: one lock around the dictionary, held for a lookup or an insertion only.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

MAX_ENTRIES = 256
MAX_AGE_SECONDS = 300.0


class _Validated(NamedTuple):
    claims: dict[str, Any]
    basis: tuple[object, ...]
    stored_at: float


class ValidatedTokens:
    """Claims of recently validated tokens by token digest; `wall_clock` is the time `exp`/`nbf` are read
    against on a hit (`time.time`, as PyJWT's), `clock` the one that ages entries (monotonic)."""

    def __init__(
        self,
        *,
        max_entries: int = MAX_ENTRIES,
        max_age_seconds: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if max_entries < 1 or max_age_seconds <= 0:
            raise ValueError("max_entries and max_age_seconds must be positive")
        self._max_entries = max_entries
        self._max_age = max_age_seconds
        self._clock = clock
        self.wall_clock = wall_clock
        self._entries: OrderedDict[bytes, _Validated] = OrderedDict()
        self._lock = threading.Lock()

    def claims(self, digest: bytes, basis: tuple[object, ...]) -> dict[str, Any] | None:
        """A copy of the claims of the token with this `token_digest` when it was validated against these very
        `basis` objects; None when not remembered, too old, or validated against others (a key set or
        metadata document refreshed since)."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if not _same(entry.basis, basis) or self._clock() - entry.stored_at >= self._max_age:
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
        return dict(entry.claims)

    def remember(self, digest: bytes, basis: tuple[object, ...], claims: dict[str, Any]) -> None:
        """Stores the claims of the token with this `token_digest`, which has just passed every rule against
        `basis`; for nothing else."""
        entry = _Validated(dict(claims), basis, self._clock())
        with self._lock:
            self._entries[digest] = entry
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, digest: object) -> bool:
        """Whether the token with this `token_digest` is remembered, fresh or not."""
        with self._lock:
            return digest in self._entries

    def keys(self) -> list[bytes]:
        """The stored keys, oldest first: digests, what the memory holds instead of tokens."""
        with self._lock:
            return list(self._entries)


def _same(stored: tuple[object, ...], current: tuple[object, ...]) -> bool:
    return len(stored) == len(current) and all(a is b for a, b in zip(stored, current, strict=True))


def token_digest(token: str) -> bytes:
    """The only form of a token the cache takes: it never sees, so never keeps, the token itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
