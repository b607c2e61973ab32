"""A landing link whose token Microsoft cannot have issued gets "link not valid" at once (issue 7, item 5).

Before the fix, `?token=X%E2%80%AE` (U+202E) made the request library fail to encode the header: a 500. A
CR/LF made it refuse the header as a transport error, which the client retried five times, answering 503
after seconds with "Resolve failed" at ERROR. An over-long token went to Microsoft. Now each is refused by
the landing page itself: 400, no call to Microsoft (a fault rule on Resolve counts any call that arrives),
a WARNING and no ERROR.
"""

from __future__ import annotations

import logging
import time

import pytest
import requests

from shared.domain.purchase_token import (
    MAX_PURCHASE_TOKEN_LENGTH,
    InvalidPurchaseTokenError,
    check_purchase_token,
)
from tests.support.stack import Stack

RESOLVE = "FulfillmentOperations_Resolve"

# URL-encoded as a browser or a hostile link sends them; each decodes to something Microsoft never issues.
MALFORMED_QUERIES = {
    "right-to-left override": "token=X%E2%80%AE",
    "CR LF": "token=abc%0D%0AX-Injected:%201",
    "line feed": "token=abc%0Adef",
    "NUL": "token=abc%00def",
    "tab": "token=abc%09def",
    "space": "token=abc%20def",
    "latin-1 letter": "token=d%C3%A9j%C3%A0",
    "invalid UTF-8": "token=abc%FFdef",
    "too long": "token=" + "A" * (MAX_PURCHASE_TOKEN_LENGTH + 1),
}


def resolve_calls(stack: Stack) -> int:
    """Calls that reached Microsoft's Resolve since the fault rule was added (the rule fails every one)."""
    rules = stack.control.request("GET", "/faults")["faults"]
    return sum(rule["hits"] for rule in rules if rule["operation"] == RESOLVE)


@pytest.fixture
def counting_resolves(stack: Stack) -> Stack:
    stack.control.add_fault(operation=RESOLVE, kind="500", share=1)
    return stack


@pytest.mark.parametrize("query", MALFORMED_QUERIES.values(), ids=MALFORMED_QUERIES.keys())
def test_a_token_microsoft_never_issues_gets_link_not_valid_at_once(
    counting_resolves: Stack, caplog: pytest.LogCaptureFixture, query: str
) -> None:
    stack = counting_resolves
    caplog.set_level(logging.DEBUG)

    started = time.monotonic()
    answer = requests.get(f"{stack.app_url}/api/landing?{query}", allow_redirects=False, timeout=30)
    elapsed = time.monotonic() - started

    assert answer.status_code == 400, answer.text[:300]
    assert "not valid" in answer.text
    assert elapsed < 2.0, "refused without a round trip or retries"
    assert resolve_calls(stack) == 0, "Microsoft was asked to resolve it"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    refusals = [r for r in caplog.records if r.getMessage() == "landing: malformed purchase token refused"]
    assert [r.levelno for r in refusals] == [logging.WARNING]
    assert not list(stack.services.subscriptions.list_all())


def test_a_genuine_token_still_resolves(stack: Stack) -> None:
    """Guards against a check so strict that it refuses real tokens: the sandbox mints them like Microsoft."""
    bought = stack.control.buy("basic")

    answer = requests.get(bought["landingUrl"], allow_redirects=False, timeout=30)

    assert answer.status_code in {302, 303}
    assert stack.stored(bought["subscriptionId"]) is not None


@pytest.mark.parametrize(
    "token",
    [
        "9EVFKOQwhUCgLB0OKLRdav6AoOXHDKqTUyYgGlJp+Dy92RdX8XGA/Ebv8XjBcKfcduQW0gg==",
        "ab-cd_ef",  # URL-safe base64
        "ab%2Bcd",  # encoded twice on its way: one decoding leaves a '%'
        "A" * MAX_PURCHASE_TOKEN_LENGTH,
    ],
)
def test_the_alphabet_admits_what_microsoft_issues(token: str) -> None:
    assert check_purchase_token(token) == token


@pytest.mark.parametrize(
    ("token", "reason"),
    [("", "empty"), ("abc\n", "bad-characters"), ("abc\u202e", "bad-characters"), ("A" * 5000, "too-long")],
)
def test_the_refusal_says_why_but_never_carries_the_token(token: str, reason: str) -> None:
    with pytest.raises(InvalidPurchaseTokenError) as refused:
        check_purchase_token(token)

    assert refused.value.reason == reason
    assert token.strip() == "" or token.strip() not in str(refused.value)
