"""No buyer's email address reaches Application Insights through a span.

The stores key rows by address (seat rows by the user key, the user index by "address:<address>"), so a
Table Storage request's URL holds one: `users(PartitionKey='address%3Aalice%40contoso.com',...)` or a
`$filter` on it. The HTTP instrumentations the distro turns on (requests, urllib3) record that URL as
`http.url` / `url.full`; the app's span processor reduces it to scheme://host/table before any exporter
sees it. The Azure SDK's own tracing is off (`shared/telemetry/_otel.py`), as it is in production.

Runs the real stores against Azurite with the requests and urllib3 instrumentations on the recording
provider of `tests/support/telemetry.py`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from azure.data.tables import TableServiceClient
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

from shared.domain.users import User
from shared.storage.seats import SeatStore
from shared.storage.users import UserStore
from tests.support.telemetry import Recorded, recording_telemetry

ADDRESS = "alice.buyer@contoso.example"
CONTACT = "ops.contact@fabrikam.example"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    with recording_telemetry() as recorded:
        requests_instrumentor, urllib3_instrumentor = RequestsInstrumentor(), URLLib3Instrumentor()
        requests_instrumentor.instrument(tracer_provider=recorded.tracer_provider)
        urllib3_instrumentor.instrument(tracer_provider=recorded.tracer_provider)
        try:
            yield recorded
        finally:
            requests_instrumentor.uninstrument()
            urllib3_instrumentor.uninstrument()


def _texts(value: Any) -> list[str]:
    """A value as it is, and percent-decoded until it no longer changes (URLs hold %40 for @)."""
    values = value if isinstance(value, tuple | list) else (value,)
    found = []
    for item in values:
        text = str(item)
        found.append(text)
        while unquote(text) != text:
            text = unquote(text)
            found.append(text)
    return found


def addresses_in(recorded: Recorded) -> list[str]:
    leaks = []
    for span in recorded.spans():
        attributes = [(key, value) for key, value in (span.attributes or {}).items()]
        for event in span.events:
            attributes += [(f"{event.name}.{key}", value) for key, value in (event.attributes or {}).items()]
        for key, value in attributes:
            for text in _texts(value):
                if EMAIL.search(text):
                    leaks.append(f"{span.name}: {key}={value}")
                    break
    return leaks


def test_seat_and_user_writes_leave_no_address_in_any_span(
    recorded: Recorded, azurite_connection_string: str, table_prefix: str
) -> None:
    service = TableServiceClient.from_connection_string(azurite_connection_string)
    seats = SeatStore(service.create_table(f"{table_prefix}seats"))
    users = UserStore(service.create_table(f"{table_prefix}users"))
    subscription_id = str(uuid.uuid4())

    seats.assign(subscription_id, ADDRESS, quantity=5, assigned_by="oid:tenant-a:admin-1")
    seats.find(subscription_id, user_key=ADDRESS)
    seats.revoke(subscription_id, ADDRESS)
    users.upsert(User(TENANT, "oid-alice", "Alice", CONTACT, ADDRESS, addresses=(ADDRESS,)))
    users.holders_of(ADDRESS)

    urls = [
        str(span.attributes.get("url.full") or span.attributes.get("http.url"))
        for span in recorded.spans()
        if span.attributes and ("url.full" in span.attributes or "http.url" in span.attributes)
    ]
    assert len(urls) >= 4, "the HTTP instrumentation saw the Table Storage requests"
    assert any(f"/{table_prefix}seats" in url for url in urls), urls
    assert addresses_in(recorded) == []
