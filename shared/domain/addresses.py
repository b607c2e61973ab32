"""How an email address or UPN is compared: trimmed, ASCII letters folded, checked as local@domain (pure).

Seats are assigned to such an address and Entra ID vouches for such addresses at sign-in
(`shared.domain.identity.entra_addresses`); both sides go through `normalize_user_key`, so they compare
equal exactly when they name the same address.
"""

from __future__ import annotations

import re
import string

_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
MAX_USER_KEY_LENGTH = 256
# Said without the text typed: shown on a page, a repr of it read as code ('\x00@x.com').
_NOT_AN_ADDRESS = "Enter an email address or user principal name, such as ada@contoso.com."
# ASCII letters only: str.lower() also maps KELVIN SIGN (U+212A) to "k", so a look-alike address would
# compare equal to another person's ASCII one.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold_case(text: str) -> str:
    """`text` trimmed, with ASCII letters in lower case and every other character left as it is."""
    return text.strip().translate(_ASCII_LOWER)


def normalize_user_key(email_or_upn: str) -> str:
    """The comparable form of an email address or UPN: trimmed, ASCII lower case, local@domain, else
    ValueError. Only ASCII letters are folded, so no non-ASCII character ever turns into an ASCII one.

    Guest UPNs such as "ada_fabrikam.com#EXT#@contoso.onmicrosoft.com" are valid keys; storage encodes the
    characters Table Storage forbids in keys.
    """
    key = fold_case(email_or_upn or "")
    if not key or len(key) > MAX_USER_KEY_LENGTH:
        raise ValueError(_NOT_AN_ADDRESS)
    local, at, domain = key.rpartition("@")
    if not at or not local or not _DOMAIN.match(domain):
        raise ValueError(_NOT_AN_ADDRESS)
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in local) or "@" in local:
        raise ValueError(_NOT_AN_ADDRESS)
    return key
