"""A hostile pass over the hardening of issue 7: each test here failed on the code before its fix.

Pure rules are checked directly; what a visitor can reach is driven over real HTTP on 127.0.0.1 (the dev host
serving `function_app.app`, the sandbox's Entra ID and Fulfillment API, Azurite).
"""

from __future__ import annotations

import pytest

from shared.domain.identity import MSA_TENANT_ID, Person, entra_addresses, may_bind_seat
from shared.domain.seats import normalize_user_key
from shared.domain.subscription import Party

CONTOSO = "11111111-0000-4000-8000-000000000000"


# --- seat binding: no Unicode case trick turns one address into another -----------------------------------


@pytest.mark.parametrize(
    ("claimed", "seat"),
    [
        ("\u212aim@contoso.com", "kim@contoso.com"),  # KELVIN SIGN lower-cases to an ASCII "k"
        ("\u212aIM@outlook.com", "kim@outlook.com"),
    ],
)
def test_a_non_ascii_look_alike_never_binds_an_ascii_seat(claimed: str, seat: str) -> None:
    assert normalize_user_key(claimed) != normalize_user_key(seat)
    for tenant in (CONTOSO, MSA_TENANT_ID):
        beneficiary = Party(tenant_id=tenant, object_id="b0b0b0b0-0000-4000-8000-000000000000")
        who = Person.of(tenant, "0a0a0a0a-0000-4000-8000-000000000000")
        vouched = entra_addresses({"preferred_username": claimed})
        assert not may_bind_seat(seat, beneficiary, who, vouched)


def test_ascii_case_still_does_not_matter() -> None:
    assert normalize_user_key(" Kim.Doe@Contoso.COM ") == "kim.doe@contoso.com"
