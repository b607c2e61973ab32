"""Every documented spelling of what Microsoft sends is read (docs/wire-variants.md has the table).

Microsoft's Learn pages, its SaaS API emulator and the OpenAPI description disagree in places. Each row of
the table has a test here: the client call over a real socket where the variant is a whole answer, the
parser where it is one field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.domain.status import Action, OperationStatus
from shared.fulfillment.client import FulfillmentClient
from shared.fulfillment.models import announced_action, parse_operation, parse_operation_list
from tests.fulfillment import OPERATION_ID, SUBSCRIPTION_ID, docs_operation, make_client
from tests.support.scripted_server import ScriptedResponse, ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def client(server: ScriptedServer) -> Iterator[FulfillmentClient]:
    made, _ = make_client(server)
    with made:
        yield made


def emulator_operation(**changes: Any) -> dict[str, Any]:
    """An operation as Microsoft's SaaS API emulator sends it, the source as `operationRequestedSource`."""
    body = docs_operation()
    body["operationRequestedSource"] = body.pop("operationRequestSource")
    return {**body, **changes}


# --- ListOperations: the answer's shape


def test_a_bare_array_of_operations_is_read(server: ScriptedServer, client: FulfillmentClient) -> None:
    """Microsoft's emulator answers ListOperations with the array itself, not `{"operations": [...]}`."""
    server.script(ScriptedResponse(200, body=[emulator_operation(operationRequestedSource="Partner")]))
    [operation] = client.list_operations(SUBSCRIPTION_ID)
    assert (operation.id, operation.subscription_id) == (OPERATION_ID, SUBSCRIPTION_ID)
    assert operation.request_source == "Partner"


def test_an_empty_bare_array_means_nothing_pending(server: ScriptedServer, client: FulfillmentClient) -> None:
    server.script(ScriptedResponse(200, body=[]))
    assert client.list_operations(SUBSCRIPTION_ID) == []


@pytest.mark.parametrize(
    "answer",
    [{"operations": [docs_operation()]}, [docs_operation()]],
    ids=["docs-and-spec-object", "emulator-bare-array"],
)
def test_both_shapes_give_the_same_operations(answer: object) -> None:
    [operation] = parse_operation_list(answer, subscription_id=SUBSCRIPTION_ID)
    assert (operation.id, operation.action, operation.request_source) == (
        OPERATION_ID,
        Action.CHANGE_PLAN,
        "Azure",
    )


@pytest.mark.parametrize("answer", [None, {}, {"operations": None}], ids=["no-body", "empty-json", "null"])
def test_an_empty_answer_means_nothing_pending(answer: object) -> None:
    """The docs: "Returns empty json if no operations are pending"."""
    assert parse_operation_list(answer) == []


# --- the operation's source


@pytest.mark.parametrize(
    ("body", "source"),
    [
        (docs_operation(operationRequestSource="Partner"), "Partner"),
        (emulator_operation(operationRequestedSource="Partner"), "Partner"),
        (emulator_operation(operationRequestedSource=" Azure "), "Azure"),
    ],
    ids=["docs-operationRequestSource", "emulator-operationRequestedSource", "padded"],
)
def test_the_source_is_read_in_either_spelling(body: dict[str, Any], source: str) -> None:
    assert parse_operation(body).request_source == source


def test_get_operation_reads_the_emulators_spelling(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    server.script(ScriptedResponse(200, body=emulator_operation(operationRequestedSource="Partner")))
    assert client.get_operation(SUBSCRIPTION_ID, OPERATION_ID).request_source == "Partner"


def test_a_blank_first_spelling_does_not_hide_the_second() -> None:
    body = docs_operation(operationRequestSource="", operationRequestedSource="Partner")
    assert parse_operation(body).request_source == "Partner"


# --- smaller differences in the Learn samples


def test_a_padded_key_still_names_the_operation() -> None:
    """The GetOperation sample in the operations API page spells the id key `"id  "`."""
    body = docs_operation()
    body["id  "] = body.pop("id")
    assert parse_operation(body).id == OPERATION_ID


def test_success_is_read_as_succeeded() -> None:
    """An older webhook sample says `"status": "Success"`, the PATCH body's word, for a finished operation."""
    assert parse_operation(docs_operation(status="Success")).status is OperationStatus.SUCCEEDED


def test_a_quantity_as_a_string_is_read() -> None:
    """Samples on both pages send `"quantity": "20"`; the spec says integer."""
    assert parse_operation(docs_operation(quantity="20")).quantity == 20


def test_a_time_without_a_zone_is_utc() -> None:
    """The operations page samples say `"timeStamp": "2018-12-01T00:00:00"`; the webhook page's end in Z."""
    naive = parse_operation(docs_operation(timeStamp="2018-12-01T00:00:00")).timestamp
    zoned = parse_operation(docs_operation(timeStamp="2018-12-01T00:00:00Z")).timestamp
    assert naive == zoned is not None


@pytest.mark.parametrize(
    ("payload", "action"),
    [
        ({"id": OPERATION_ID, "subscriptionId": SUBSCRIPTION_ID, "action": "Suspend"}, "Suspend"),
        ({"subscriptionId": SUBSCRIPTION_ID, "operationType": "Reinstate"}, "Reinstate"),
    ],
    ids=["action", "webhook-reinstate-sample-operationType"],
)
def test_the_announced_action_is_read_in_either_spelling(payload: dict[str, Any], action: str) -> None:
    assert announced_action(payload) == action
