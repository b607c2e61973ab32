"""The license check the publisher's app calls: key required, one read, answers as its OpenAPI file says."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.data.tables import TableClient, TableServiceClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from shared.app_context import services
from shared.domain.identity import Person
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Party, Subscription
from shared.domain.transitions import Cause
from shared.storage.licenses import LicenseIndex
from shared.workflows.sync import sync_from_microsoft
from tests.portal import ADELE, ALEX, FUNCTION_KEY, MEGAN, Portal, post_form, remember_user, running_portal

SPEC_FILE = Path(__file__).resolve().parents[2] / "docs" / "license-api.openapi.yaml"
OFFER = "contoso-analytics"


@pytest.fixture(scope="module")
def portal(azurite_connection_string: str) -> Iterator[Portal]:
    with running_portal(azurite_connection_string, "l" + uuid.uuid4().hex[:10]) as running:
        yield running


@cache
def spec() -> OpenAPI:
    return OpenAPI.from_dict(yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8")))


def check(portal: Portal, *, key: str | None = FUNCTION_KEY, **params: str) -> requests.Response:
    headers = {"x-functions-key": key} if key else {}
    response = portal.browser().get(f"{portal.url}/api/licenses/check", params=params, headers=headers)
    if response.status_code != 401:
        assert_matches_spec(response, params)
    return response


def assert_matches_spec(response: requests.Response, params: dict[str, str]) -> None:
    request = MockRequest("http://127.0.0.1:7071", "get", "/api/licenses/check", args=params)
    answer = MockResponse(
        response.content,
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=response.headers["Content-Type"].split(";")[0],
    )
    spec().validate_response(request, answer)


def user_params(user: Any, offer: str = OFFER) -> dict[str, str]:
    return {"tenantId": user.tenant_id, "objectId": user.object_id, "offerId": offer}


def test_a_seat_holder_is_licensed_until_the_seat_is_revoked(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    remember_user(MEGAN)
    client = portal.browser(ADELE)
    url = portal.page_url(subscription_id)
    assert check(portal, **user_params(MEGAN)).json()["allowed"] is False

    post_form(client, url, "seats", {"user": f"{MEGAN.tenant_id}:{MEGAN.object_id}"})
    answer = check(portal, **user_params(MEGAN))
    assert answer.json() == {
        "allowed": True,
        "subscriptionId": subscription_id,
        "planId": "team-seats",
        "status": "Subscribed",
        "reason": "licensed",
    }
    assert answer.headers["Cache-Control"] == "private, max-age=60"
    assert check(portal, **user_params(ADELE)).json()["reason"] == "no-license"  # the buyer holds no seat
    assert check(portal, **user_params(MEGAN, "other-offer")).json()["allowed"] is False

    [seat] = services().seats.list(subscription_id)
    post_form(client, url, "seats/revoke", {"seat": seat.key})
    assert check(portal, **user_params(MEGAN)).json() == {
        "allowed": False,
        "subscriptionId": None,
        "planId": None,
        "status": None,
        "reason": "no-license",
    }


def test_flat_rate_plans_license_every_user_of_the_buyers_tenant_only(portal: Portal) -> None:
    portal.buy("basic", quantity=None, buyer="alex.wilber@fabrikam.onmicrosoft.com")
    colleague = {"tenantId": ALEX.tenant_id, "objectId": str(uuid.uuid4()), "offerId": OFFER}
    assert check(portal, **colleague).json()["allowed"] is True
    assert check(portal, **colleague).json()["planId"] == "basic"
    assert check(portal, **{**colleague, "tenantId": str(uuid.uuid4())}).json()["allowed"] is False


def test_suspension_mirrored_by_the_worker_withdraws_the_license(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    remember_user(MEGAN)
    post_form(
        portal.browser(ADELE),
        portal.page_url(subscription_id),
        "seats",
        {"user": f"{MEGAN.tenant_id}:{MEGAN.object_id}"},
    )
    portal.control.suspend(subscription_id)
    suspended = Cause("", "Suspend", "test", datetime.now(UTC))
    sync_from_microsoft(services().sync_ports, subscription_id, suspended, "t")
    answer = check(portal, **user_params(MEGAN)).json()
    assert (answer["allowed"], answer["status"], answer["reason"]) == (
        False,
        "Suspended",
        "subscription-not-active",
    )


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_the_function_key_is_required(portal: Portal, key: str | None) -> None:
    assert check(portal, key=key, **user_params(MEGAN)).status_code == 401


def test_the_key_may_come_as_the_code_parameter(portal: Portal) -> None:
    response = check(portal, key=None, code=FUNCTION_KEY, **user_params(MEGAN))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"tenantId": ADELE.tenant_id, "objectId": ADELE.object_id},
        {"tenantId": " ", "objectId": ADELE.object_id, "offerId": OFFER},
        {"tenantId": "a' or 'a' eq 'a", "objectId": ADELE.object_id, "offerId": OFFER},
        {"tenantId": ADELE.tenant_id, "objectId": "x|y", "offerId": OFFER},
        {"tenantId": ADELE.tenant_id, "objectId": ADELE.object_id, "offerId": "of/fer"},
    ],
)
def test_bad_parameters_are_400(portal: Portal, params: dict[str, str]) -> None:
    response = check(portal, **params)
    assert response.status_code == 400
    assert response.json()["error"] in {"missing_parameter", "invalid_parameter"}


class _RequestCounter(SansIOHTTPPolicy):  # type: ignore[type-arg]
    def __init__(self) -> None:
        self.requests: list[str] = []

    def on_request(self, request: Any) -> None:
        self.requests.append(f"{request.http_request.method} {request.http_request.url}")


@pytest.mark.parametrize("holder", ["seat", "tenant", "nobody"])
def test_a_check_is_one_request_to_storage(
    azurite_connection_string: str, table_prefix: str, holder: str
) -> None:
    counter = _RequestCounter()
    name = f"{table_prefix}lic"
    TableServiceClient.from_connection_string(azurite_connection_string).create_table_if_not_exists(name)
    table = TableClient.from_connection_string(azurite_connection_string, name, per_call_policies=[counter])
    index = LicenseIndex(table)
    tenant, user = str(uuid.uuid4()), str(uuid.uuid4())
    subscription = Subscription(
        id=str(uuid.uuid4()),
        offer_id=OFFER,
        plan_id="p",
        quantity=None if holder == "tenant" else 3,
        beneficiary=Party(tenant_id=tenant),
    )
    index.refresh(subscription, [Person.of(tenant, user)] if holder == "seat" else [])
    counter.requests.clear()

    entry = index.lookup(tenant, user, OFFER)

    assert len(counter.requests) == 1, counter.requests
    assert (entry is None) == (holder == "nobody")


class _Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_seat_revoked_on_another_instance_stops_being_allowed_within_the_cache_bound(
    azurite_connection_string: str, table_prefix: str
) -> None:
    name = f"{table_prefix}cache"
    TableServiceClient.from_connection_string(azurite_connection_string).create_table_if_not_exists(name)
    counter, clock = _RequestCounter(), _Clock()
    table = TableClient.from_connection_string(azurite_connection_string, name, per_call_policies=[counter])
    checker = LicenseIndex(table, cache_seconds=10, clock=clock)  # the instance answering checks
    writer = LicenseIndex(TableClient.from_connection_string(azurite_connection_string, name))  # another one
    tenant, user = str(uuid.uuid4()), str(uuid.uuid4())
    subscription = Subscription(
        id=str(uuid.uuid4()), offer_id=OFFER, plan_id="p", quantity=3, beneficiary=Party(tenant_id=tenant)
    )
    writer.refresh(subscription, [Person.of(tenant, user)])
    assert checker.lookup(tenant, user, OFFER) is not None
    counter.requests.clear()
    assert checker.lookup(tenant, user, OFFER) is not None
    assert counter.requests == []  # a hot key is answered from memory

    writer.remove_seat(subscription, tenant, user)
    clock.now += 9.9
    assert checker.lookup(tenant, user, OFFER) is not None  # stale, but inside the documented bound
    clock.now += 0.2
    assert checker.lookup(tenant, user, OFFER) is None  # past the bound: read again, revoked

    # A write through the answering instance itself is seen at once.
    checker.put_seat(subscription, tenant, user)
    assert checker.lookup(tenant, user, OFFER) is not None


def _index_with_counter(connection_string: str, name: str) -> tuple[LicenseIndex, _RequestCounter]:
    counter = _RequestCounter()
    TableServiceClient.from_connection_string(connection_string).create_table_if_not_exists(name)
    table = TableClient.from_connection_string(connection_string, name, per_call_policies=[counter])
    return LicenseIndex(table), counter


def _seat_plan(tenant: str, status: SubscriptionStatus = SubscriptionStatus.SUBSCRIBED) -> Subscription:
    return Subscription(
        id=str(uuid.uuid4()),
        offer_id=OFFER,
        plan_id="p",
        quantity=3,
        status=status,
        beneficiary=Party(tenant_id=tenant),
    )


def test_a_live_subscription_writes_its_seat_rows_without_reading_them_first(
    azurite_connection_string: str, table_prefix: str
) -> None:
    index, counter = _index_with_counter(azurite_connection_string, f"{table_prefix}live")
    tenant = str(uuid.uuid4())
    holders = [Person.of(tenant, str(uuid.uuid4())) for _ in range(2)]

    index.refresh(_seat_plan(tenant), holders)

    # The tenant-wide row is looked up (a per-seat plan removes only its own), the seat rows are written.
    methods = [request.split(" ", 1)[0] for request in counter.requests]
    assert methods == ["GET", "PUT", "PUT"], counter.requests


def test_a_subscription_that_is_not_live_never_takes_a_seat_row_from_a_live_one(
    azurite_connection_string: str, table_prefix: str
) -> None:
    index, _counter = _index_with_counter(azurite_connection_string, f"{table_prefix}keep")
    tenant, user = str(uuid.uuid4()), str(uuid.uuid4())
    live, suspended = _seat_plan(tenant), _seat_plan(tenant, SubscriptionStatus.SUSPENDED)

    index.refresh(live, [Person.of(tenant, user)])
    index.refresh(suspended, [Person.of(tenant, user)])
    entry = index.lookup(tenant, user, OFFER)
    assert entry is not None
    assert entry.subscription_id == live.id

    # The other way round: a row written while its subscription was not live goes to a live one.
    other_user = str(uuid.uuid4())
    index.refresh(suspended, [Person.of(tenant, other_user)])
    index.refresh(live, [Person.of(tenant, other_user)])
    entry = index.lookup(tenant, other_user, OFFER)
    assert entry is not None
    assert entry.subscription_id == live.id
