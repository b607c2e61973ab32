"""The table client's lighter transaction framing, against Azurite and against the SDK's own framing.

The body this project writes must be the one azure-data-tables writes (boundaries and dates aside), a
success must be read from one round trip, and anything else must end exactly as the SDK ends it: its
own TableTransactionError, with nothing of the failed transaction written.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient as SdkTableClient
from azure.data.tables import TableServiceClient, TableTransactionError, UpdateMode

from shared.config import Settings
from shared.storage.tables import TableSet
from shared.storage.transactions import TableClient, batch_body, successful_etags


class RecordingTransport(RequestsTransport):
    """requests' transport as the SDK uses it, keeping each $batch request it sends (real sockets)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[dict[str, str], bytes]] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        if request.url.endswith("/$batch"):
            body = request.content if hasattr(request, "content") else request.body
            self.batches.append((dict(request.headers), bytes(body)))
        return super().send(request, **kwargs)


@pytest.fixture
def table_name(azurite_connection_string: str, table_prefix: str) -> str:
    TableServiceClient.from_connection_string(azurite_connection_string).create_table(table_prefix)
    return table_prefix


def _clients(connection_string: str, table: str) -> tuple[SdkTableClient, TableClient, RecordingTransport]:
    recorder = RecordingTransport()
    sdk = SdkTableClient.from_connection_string(connection_string, table_name=table, transport=recorder)
    ours = TableClient.from_connection_string(connection_string, table_name=table, transport=recorder)
    return sdk, ours, recorder


def _normalised(body: bytes) -> bytes:
    """The body with what differs on every call (boundaries, dates, row keys of this test) made constant."""
    body = re.sub(rb"(batch|changeset)_[0-9a-f-]{36}", rb"\1_B", body)
    body = re.sub(rb"(Date|x-ms-date): [^\r\n]+", rb"\1: D", body)
    body = re.sub(rb"datetime'[^']+'", b"datetime'T'", body)  # the If-Match ETag of this test's row
    return re.sub(rb"'[0-9a-f]{32}'|\"[0-9a-f]{32}\"|%27[0-9a-f]{32}%27", b"K", body)


def _entity(row_key: str, **fields: object) -> dict[str, object]:
    return {"PartitionKey": "p", "RowKey": row_key, **fields}


def _operations(client: SdkTableClient) -> list[Any]:
    """One of each kind the stores send: create, guarded replace, upsert, delete."""
    keys = [uuid.uuid4().hex for _ in range(4)]
    existing = client.create_entity(_entity(keys[1], plan="basic"))
    client.create_entity(_entity(keys[3]))
    return [
        ("create", _entity(keys[0], name="Contoso é", quantity=5, active=True)),
        (
            "update",
            _entity(keys[1], plan="pro"),
            {
                "mode": UpdateMode.REPLACE,
                "etag": existing["etag"],
                "match_condition": MatchConditions.IfNotModified,
            },
        ),
        ("upsert", _entity(keys[2], note="x" * 300), {"mode": UpdateMode.MERGE}),
        ("delete", _entity(keys[3])),
    ]


def test_the_body_is_the_one_the_sdk_writes(azurite_connection_string: str, table_name: str) -> None:
    sdk, ours, recorder = _clients(azurite_connection_string, table_name)
    sdk.submit_transaction(_operations(sdk))
    ours.submit_transaction(_operations(sdk))

    (sdk_headers, sdk_body), (our_headers, our_body) = recorder.batches
    assert _normalised(our_body) == _normalised(sdk_body)
    for name in ("x-ms-version", "DataServiceVersion", "MaxDataServiceVersion", "Accept"):
        assert our_headers[name] == sdk_headers[name]
    assert our_headers["Content-Type"].startswith("multipart/mixed; boundary=batch_")


def test_a_success_is_read_from_one_round_trip_with_each_rows_etag(
    azurite_connection_string: str, table_name: str
) -> None:
    sdk, ours, recorder = _clients(azurite_connection_string, table_name)
    operations = _operations(sdk)
    recorder.batches.clear()

    written = ours.submit_transaction(operations)

    assert len(recorder.batches) == 1
    assert len(written) == 4
    for (_kind, entity, *_), metadata in zip(operations[:3], written[:3], strict=True):
        stored = sdk.get_entity("p", str(entity["RowKey"]))
        assert metadata["etag"] == stored.metadata["etag"]
    assert sdk.get_entity("p", str(operations[0][1]["RowKey"]))["name"] == "Contoso é"


@pytest.mark.parametrize(
    ("spoil", "code"),
    [("create", "EntityAlreadyExists"), ("update", "UpdateConditionNotSatisfied")],
)
def test_a_failed_transaction_raises_the_sdks_error_and_writes_nothing(
    azurite_connection_string: str, table_name: str, spoil: str, code: str
) -> None:
    sdk, ours, recorder = _clients(azurite_connection_string, table_name)
    operations = _operations(sdk)
    created_key = str(operations[0][1]["RowKey"])
    if spoil == "create":
        sdk.create_entity(_entity(created_key, name="already there"))
    else:
        sdk.upsert_entity(_entity(str(operations[1][1]["RowKey"]), plan="changed meanwhile"))
    recorder.batches.clear()

    with pytest.raises(TableTransactionError) as raised:
        ours.submit_transaction(operations)

    assert getattr(raised.value, "error_code", None) == code
    # One send: the failure is read from the same answer, the SDK's way, never sent again.
    assert len(recorder.batches) == 1
    untouched = sdk.get_entity("p", str(operations[3][1]["RowKey"]))  # the delete did not happen
    assert untouched["RowKey"] == operations[3][1]["RowKey"]
    upserted = list(sdk.query_entities("RowKey eq @k", parameters={"k": str(operations[2][1]["RowKey"])}))
    assert upserted == []


def _what_each_raises(clients: tuple[SdkTableClient, ...], operations: list[Any]) -> list[tuple[Any, ...]]:
    """(type, error code, status) of what each client raises for the same transaction."""
    raised = []
    for client in clients:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever the SDK raises, ours must match
            client.submit_transaction(operations)
        error = caught.value
        raised.append((type(error), getattr(error, "error_code", None), getattr(error, "status_code", None)))
    return raised


def test_a_refused_batch_raises_what_the_sdk_raises_after_one_send(azurite_connection_string: str) -> None:
    missing = "t" + uuid.uuid4().hex[:12]
    sdk, ours, recorder = _clients(azurite_connection_string, missing)
    raised = _what_each_raises((sdk, ours), [("create", _entity("a")), ("create", _entity("b"))])
    assert raised[0] == raised[1]
    assert raised[1][2] == 404
    assert len(recorder.batches) == 2  # one each


def test_a_batch_refused_as_a_whole_raises_what_the_sdk_raises(
    azurite_connection_string: str, table_name: str
) -> None:
    # A wrong account key: the service refuses the batch itself (403), not one of its parts.
    forged = re.sub(r"AccountKey=[^;]+", "AccountKey=" + "A" * 86 + "==", azurite_connection_string)
    sdk, ours, recorder = _clients(forged, table_name)
    raised = _what_each_raises((sdk, ours), [("create", _entity("a"))])
    assert issubclass(raised[1][0], HttpResponseError)
    assert raised[0] == raised[1]
    assert raised[1][2] == 403
    assert len(recorder.batches) == 2  # one each


def test_the_table_set_hands_out_this_client(azurite_connection_string: str, table_prefix: str) -> None:
    tables = TableSet.from_settings(
        Settings(
            storage_connection_string=azurite_connection_string, table_subscriptions=f"{table_prefix}subs"
        )
    )
    client = tables.table(f"{table_prefix}subs")
    assert isinstance(client, TableClient)
    client.submit_transaction([("create", _entity("a")), ("create", _entity("b"))])
    assert {row["RowKey"] for row in client.query_entities("PartitionKey eq 'p'")} == {"a", "b"}


# --- reading the answer ------------------------------------------------------------------------------------

_OK_PART = (
    b"--changesetresponse_c\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"HTTP/1.1 %s\r\nX-Content-Type-Options: nosniff\r\n%s\r\n\r\n"
)


def _answer(*parts: bytes, closed: bool = True) -> bytes:
    head = b"--batchresponse_b\r\nContent-Type: multipart/mixed; boundary=changesetresponse_c\r\n\r\n"
    tail = b"--changesetresponse_c--\r\n--batchresponse_b--\r\n" if closed else b""
    return head + b"".join(parts) + tail


CONTENT_TYPE = "multipart/mixed; boundary=batchresponse_b"


def test_each_parts_etag_is_read_in_order() -> None:
    body = _answer(
        _OK_PART % (b"204 No Content", b"ETag: W/\"datetime'1'\""),
        _OK_PART % (b"201 Created", b"etag: W/\"datetime'2'\""),
        _OK_PART % (b"204 No Content", b"Cache-Control: no-cache"),
    )
    assert successful_etags(202, CONTENT_TYPE, body) == ["W/\"datetime'1'\"", "W/\"datetime'2'\"", ""]


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (400, CONTENT_TYPE, _answer(_OK_PART % (b"204 No Content", b"ETag: x"))),
        (202, "application/json", _answer(_OK_PART % (b"204 No Content", b"ETag: x"))),
        (202, CONTENT_TYPE, _answer(_OK_PART % (b"409 Conflict", b"Content-ID: 1"))),
        (202, CONTENT_TYPE, _answer(_OK_PART % (b"204 No Content", b"ETag: x"), closed=False)),
        (202, CONTENT_TYPE, b"--batchresponse_b\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n--batchresponse_b--"),
        (202, CONTENT_TYPE, b""),
    ],
    ids=["batch refused", "not multipart", "a part failed", "cut short", "no changeset", "empty"],
)
def test_anything_but_a_full_success_is_not_taken_for_one(
    status: int, content_type: str, body: bytes
) -> None:
    assert successful_etags(status, content_type, body) is None


def test_a_request_without_a_body_is_framed_with_an_empty_one() -> None:
    from azure.core.rest import HttpRequest

    body = batch_body(
        (HttpRequest("DELETE", "http://h/t(PartitionKey='p',RowKey='r')"),), "batch_b", "changeset_c"
    )
    assert b"DELETE http://h/t(PartitionKey='p',RowKey='r') HTTP/1.1\r\n" in body
    assert body.endswith(b"\r\n\r\n\r\n--changeset_c--\r\n\r\n--batch_b--\r\n")
