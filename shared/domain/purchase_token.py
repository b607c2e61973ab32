"""What a marketplace purchase token may look like before we show it to Microsoft (pure, no I/O).

Microsoft sends the buyer to the landing page with `?token=...` (R1). The token is opaque, but its shape is
known: base64 (`A-Z a-z 0-9 + / =`), sometimes URL-safe base64 (`- _`), and, when a link was encoded twice
on its way, `%` after our single URL decoding (R2). The sandbox mints 64-character standard base64 tokens;
Microsoft's own are a few hundred characters.

Anything else (non-Latin-1 text such as U+202E, control characters, CR/LF, a space) was never issued by
Microsoft, and some of it cannot even travel in the `x-ms-marketplace-token` header: a link carrying it is
simply not valid. Refusing it here, before any call, keeps a hand-edited or hostile link from costing a
Resolve round trip, a retry storm or an ERROR log line.
"""

from __future__ import annotations

import re

# Generous: about ten times the length of the tokens Microsoft issues, well below the 4 KB query strings the
# Functions front end accepts.
MAX_PURCHASE_TOKEN_LENGTH = 2048
# The one definition of the accepted alphabet: base64, URL-safe base64, and "%" from a double encoding.
_PURCHASE_TOKEN = re.compile(r"[A-Za-z0-9+/=\-_%]+")

TOO_LONG = "too-long"
BAD_CHARACTERS = "bad-characters"
EMPTY = "empty"


class InvalidPurchaseTokenError(ValueError):
    """A token Microsoft cannot have issued; `reason` is "empty", "too-long" or "bad-characters"."""

    def __init__(self, reason: str, length: int) -> None:
        super().__init__(f"purchase token refused: {reason} ({length} characters)")
        self.reason = reason
        self.length = length


def check_purchase_token(token: str) -> str:
    """Returns `token` unchanged when it has the shape of a marketplace token, else raises.

    The error never carries the token itself, only why and how long: it may end up in a log line.
    """
    if not token:
        raise InvalidPurchaseTokenError(EMPTY, 0)
    if len(token) > MAX_PURCHASE_TOKEN_LENGTH:
        raise InvalidPurchaseTokenError(TOO_LONG, len(token))
    # fullmatch, not match + `$`: `$` would accept a trailing newline.
    if _PURCHASE_TOKEN.fullmatch(token) is None:
        raise InvalidPurchaseTokenError(BAD_CHARACTERS, len(token))
    return token
