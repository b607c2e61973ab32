"""Purchase tokens (R2, R4), ListSubscriptions paging (R21) and state that survives a sandbox restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

import pytest

from sandbox.server import RunningSandbox
from tests.support.ports import free_port, refusing_port
from tests.support.sandbox import ApiCaller, ControlClient, running_sandbox, wait_until
from tests.support.spec import validate_response


@pytest.fixture(scope="module")
def landing_url() -> Iterator[str]:
    """The publisher's landing page: on a port held by this module, so no other process owns it."""
    with refusing_port() as port:
        yield f"http://127.0.0.1:{port}/api/landing"


@pytest.fixture(scope="module")
def sandbox(landing_url: str) -> Iterator[RunningSandbox]:
    with running_sandbox(landing_url=landing_url) as sb:
        yield sb


@pytest.fixture
def unanswered_webhook() -> Iterator[str]:
    """A webhook URL nobody answers, for sandboxes that restore their state from a folder."""
    with refusing_port() as port:
        yield f"http://127.0.0.1:{port}/api/webhook"


def resolve_status(api: ApiCaller, token: str) -> int:
    return api.call("POST", "/subscriptions/resolve", headers={"x-ms-marketplace-token": token}).status_code


def raw_token_parameter(landing_url: str) -> str:
    """The token exactly as it appears in the landing page URL, before any decoding."""
    query = urlsplit(landing_url).query
    assert query.startswith("token=")
    return query[len("token=") :]


# --- tokens


def test_tokens_carry_plus_slash_and_equals(control: ControlClient) -> None:
    for _ in range(5):
        token = control.buy("basic")["token"]
        assert {"+", "/", "="} <= set(token)


def test_landing_url_is_the_configured_page_with_the_token_encoded_once(
    control: ControlClient, landing_url: str
) -> None:
    bought = control.buy("basic")
    assert bought["landingUrl"].startswith(f"{landing_url}?token=")
    raw = raw_token_parameter(bought["landingUrl"])
    assert "%2B" in raw
    assert "%2F" in raw
    assert "%3D" in raw
    assert "+" not in raw


def test_token_decoded_once_resolves(control: ControlClient, api: ApiCaller) -> None:
    bought = control.buy("basic")
    decoded_once = unquote(raw_token_parameter(bought["landingUrl"]))
    assert decoded_once == bought["token"]
    assert resolve_status(api, decoded_once) == 200
    assert parse_qs(urlsplit(bought["landingUrl"]).query)["token"] == [bought["token"]]


def test_token_decoded_wrongly_does_not_resolve(control: ControlClient, api: ApiCaller) -> None:
    bought = control.buy("basic")
    raw = raw_token_parameter(bought["landingUrl"])
    assert resolve_status(api, raw) == 400  # never decoded
    assert resolve_status(api, unquote_plus(unquote(raw))) == 400  # decoded twice, the second time as a form
    assert resolve_status(api, bought["token"].replace("+", " ")) == 400  # '+' taken for a space


def test_tokens_expire_after_the_configured_lifetime(control: ControlClient, api: ApiCaller) -> None:
    control.settings(tokenLifetimeSeconds=0.3)
    token = control.buy("basic")["token"]
    assert resolve_status(api, token) == 200
    wait_until(lambda: resolve_status(api, token) == 400, timeout=5)


def test_a_new_token_resolves_an_existing_subscription_in_any_status(
    control: ControlClient, api: ApiCaller
) -> None:
    subscription_id = control.buy("basic")["subscriptionId"]
    control.unsubscribe(subscription_id)
    token = control.new_token(subscription_id)["token"]
    resolved = api.call("POST", "/subscriptions/resolve", headers={"x-ms-marketplace-token": token}).json()
    assert resolved["id"] == subscription_id
    assert resolved["subscription"]["saasSubscriptionStatus"] == "Unsubscribed"


# --- paging


def test_list_subscriptions_pages_with_absolute_next_links(
    control: ControlClient, api: ApiCaller, sandbox: RunningSandbox
) -> None:
    control.settings(pageSize=2)
    bought = [control.buy("basic")["subscriptionId"] for _ in range(5)]
    url, seen, pages = api.url("/subscriptions/"), [], 0
    while url:
        response = api.call("GET", "", url=url)
        validate_response("GET", url, response.status_code, dict(response.headers), response.content)
        body = response.json()
        seen += [s["id"] for s in body["subscriptions"]]
        pages += 1
        url = body.get("@nextLink")
        if url:
            assert url.startswith(f"{sandbox.https_url}/api/saas/subscriptions/?")
            assert parse_qs(urlsplit(url).query)["api-version"] == ["2018-08-31"]
    assert (seen, pages) == (bought, 3)


def test_list_subscriptions_without_any_is_an_empty_list(control: ControlClient, api: ApiCaller) -> None:
    assert api.call("GET", "/subscriptions/").json() == {"subscriptions": []}


def test_a_continuation_token_not_issued_by_the_api_is_400(control: ControlClient, api: ApiCaller) -> None:
    url = api.url("/subscriptions/", continuationToken="abc")
    assert api.call("GET", "", url=url).status_code == 400


# --- restart


def test_state_survives_a_restart_from_the_same_state_dir(tmp_path: Path, unanswered_webhook: str) -> None:
    # The same HTTPS port, as `make dev` uses: the token issuer (the Entra URL) stays the same.
    https_port = free_port()
    with running_sandbox(
        state_dir=tmp_path, https_port=https_port, auto_accept_seconds=60, webhook_url=unanswered_webhook
    ) as first:
        control = ControlClient(first.http_url)
        bought = control.buy("team-seats", quantity=4)
        first.marketplace.activate(bought["subscriptionId"], {"planId": "team-seats"})
        operation_id = control.change_quantity(bought["subscriptionId"], 6)["operationId"]
        control.settings(pageSize=7)
        publisher_token = first.entra.mint_publisher_access_token()
        before = first.marketplace.subscription(bought["subscriptionId"])
    with running_sandbox(state_dir=tmp_path, https_port=https_port) as second:
        api = ApiCaller(second, token=publisher_token)
        assert api.call("GET", f"/subscriptions/{bought['subscriptionId']}").json() == before
        assert resolve_status(api, bought["token"]) == 200
        pending = api.call("GET", f"/subscriptions/{bought['subscriptionId']}/operations").json()[
            "operations"
        ]
        assert [op["id"] for op in pending] == [operation_id]
        assert ControlClient(second.http_url).settings()["pageSize"] == 7


def test_a_restored_pending_change_is_still_auto_accepted(tmp_path: Path, unanswered_webhook: str) -> None:
    with running_sandbox(
        state_dir=tmp_path, auto_accept_seconds=0.5, webhook_url=unanswered_webhook
    ) as first:
        control = ControlClient(first.http_url)
        subscription_id = control.buy("basic")["subscriptionId"]
        first.marketplace.activate(subscription_id, {"planId": "basic"})
        operation_id = control.change_plan(subscription_id, "pro")["operationId"]
    with running_sandbox(state_dir=tmp_path) as second:
        wait_until(lambda: second.marketplace.operation_record(operation_id).status == "Succeeded", timeout=5)
        assert second.marketplace.subscription(subscription_id)["planId"] == "pro"


def test_explicit_settings_win_over_a_restored_state(tmp_path: Path) -> None:
    with refusing_port() as old_port, refusing_port() as new_port:
        old, new = (f"http://127.0.0.1:{port}/api/webhook" for port in (old_port, new_port))
        with running_sandbox(state_dir=tmp_path, webhook_url=old) as first:
            assert first.marketplace.settings.webhook_url == old
        with running_sandbox(state_dir=tmp_path, webhook_url=new) as second:
            assert second.marketplace.settings.webhook_url == new
        with running_sandbox(state_dir=tmp_path) as third:
            assert third.marketplace.settings.webhook_url == new


def test_a_corrupt_state_file_fails_start_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "marketplace.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RuntimeError, match="cannot read sandbox state"):
        running_sandbox(state_dir=tmp_path).__enter__()
