"""Entity-group transactions without the cost of the e-mail package, for the SDK's own table client.

azure-data-tables frames a transaction (`submit_transaction`) as a MIME multipart body through azure-core,
which builds it with Python's `email` generator, runs the part policies on a new thread pool, and parses
the answer with the `email` parser. Measured against Azurite that is about 7.5 ms of CPU for a transaction
of two rows, where a single-row write costs about 2.2 ms. The mirror writes every change of a subscription
with its audit row as such a transaction, so on a burst or a first reconciliation that framing was the
worker's largest single cost.

`TableClient` here changes only how the batch is framed and how a success is read. The SDK still builds
every sub-request (URLs, entity serialisation, If-Match) and sends the batch through its own pipeline
(signing, retries, logging). The body written here is the one the SDK writes (a test compares them byte
for byte, boundaries and dates aside). Only a complete success is read here; every other answer, from the
same single send, is read by the SDK's own code (`_sdk_outcome`, the tail of its `_batch_send`), so a
failure raises exactly what the SDK raises and nothing is ever sent twice.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from wsgiref.handlers import format_date_time

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.data.tables import RequestTooLargeError, TableTransactionError
from azure.data.tables import TableClient as SdkTableClient
from azure.data.tables import _base_client as sdk_base
from azure.data.tables import _error as sdk_errors

_CRLF = "\r\n"
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})", re.MULTILINE)
_ETAG_HEADER = re.compile(rb"^etag:[ \t]*(.+?)[ \t]*\r?$", re.MULTILINE | re.IGNORECASE)
_BOUNDARY = re.compile(r'boundary="?([^";\s]+)"?', re.IGNORECASE)

# The SDK's own readers of a batch answer (untyped, private to azure-data-tables, which is pinned).
_decode_error: Callable[..., HttpResponseError] = sdk_errors._decode_error
_validate_tablename_error: Callable[[HttpResponseError, str], None] = sdk_errors._validate_tablename_error
_part_metadata: Callable[[Any], Mapping[str, Any]] = sdk_base.extract_batch_part_metadata


class TableClient(SdkTableClient):
    """The SDK's TableClient, with transactions framed and read without the `email` package."""

    def _batch_send(self, table_name: str, *reqs: HttpRequest, **kwargs: Any) -> list[Mapping[str, Any]]:
        # Only the plain call `submit_transaction(operations)` makes takes the short way; anything unusual
        # (per-call options, an empty list) keeps the SDK's path and its behaviour.
        if kwargs or not reqs:
            return super()._batch_send(table_name, *reqs, **kwargs)
        batch_boundary, changeset_boundary = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
        request = HttpRequest(
            method="POST",
            url=f"{self.scheme}://{self._primary_hostname}/$batch",
            headers={
                "x-ms-version": self.api_version,
                "DataServiceVersion": "3.0",
                "MaxDataServiceVersion": "3.0;NetFx",
                "Content-Type": f"multipart/mixed; boundary={batch_boundary}",
                "Accept": "application/json",
            },
            content=batch_body(reqs, batch_boundary, changeset_boundary),
        )
        # Streamed, as the SDK sends it: the pipeline's content decoder knows no multipart answer.
        response = self._client.send_request(request, stream=True)
        body = response.read()
        etags = successful_etags(response.status_code, response.headers.get("content-type", ""), body)
        if etags is None or len(etags) != len(reqs):
            # The SDK reads the parts against the requests it framed: describe them to it as it would have.
            changeset = HttpRequest("POST", "")
            changeset.set_multipart_mixed(*reqs, policies=[], boundary=changeset_boundary)
            response.request.set_multipart_mixed(
                changeset, policies=[], enforce_https=False, boundary=batch_boundary
            )
            return _sdk_outcome(response, table_name)
        return [{"etag": etag} if etag else {} for etag in etags]


_TOO_LARGE = "The transaction request was too large"


def _sdk_outcome(response: Any, table_name: str) -> list[Mapping[str, Any]]:
    """The answer read as azure-data-tables 12.7.0 reads it in `_batch_send` (kept line for line): its
    errors, decoded its way. Only failures and answers this module cannot read take this path."""
    if response.status_code == 413:
        raise _decode_error(response, error_message=_TOO_LARGE, error_type=RequestTooLargeError)
    if response.status_code != 202:
        decoded = _decode_error(response)
        _validate_tablename_error(decoded, table_name)
        raise decoded
    parts = list(response.parts())
    error_parts = [p for p in parts if not 200 <= p.status_code < 300]
    if any(error_parts):
        if error_parts[0].status_code == 413:
            raise _decode_error(response, error_message=_TOO_LARGE, error_type=RequestTooLargeError)
        decoded = _decode_error(response=error_parts[0], error_type=TableTransactionError)
        _validate_tablename_error(decoded, table_name)
        raise decoded
    return [_part_metadata(p) for p in parts]


def batch_body(requests: tuple[HttpRequest, ...], batch_boundary: str, changeset_boundary: str) -> bytes:
    """The multipart body of one changeset holding `requests`, as azure-core frames it."""
    date = _http_date()
    chunks: list[bytes] = [
        f"--{batch_boundary}{_CRLF}"
        f"Content-Type: multipart/mixed; boundary={changeset_boundary}{_CRLF}{_CRLF}".encode()
    ]
    for index, sub in enumerate(requests):
        headers = dict(sub.headers)
        headers["x-ms-date"] = date
        headers["Date"] = date
        head = (
            f"--{changeset_boundary}{_CRLF}"
            f"Content-Type: application/http{_CRLF}"
            f"Content-Transfer-Encoding: binary{_CRLF}"
            f"Content-ID: {index}{_CRLF}{_CRLF}"
            f"{sub.method} {sub.url} HTTP/1.1{_CRLF}"
            + "".join(f"{name}: {value}{_CRLF}" for name, value in headers.items())
            + _CRLF
        )
        chunks.append(head.encode())
        content = sub.content or b""
        chunks.append(content.encode("utf-8") if isinstance(content, str) else bytes(content))
        chunks.append(_CRLF.encode())
    chunks.append(f"--{changeset_boundary}--{_CRLF}{_CRLF}--{batch_boundary}--{_CRLF}".encode())
    return b"".join(chunks)


def successful_etags(status: int, content_type: str, body: bytes) -> list[str] | None:
    """Each part's ETag ("" when it has none) when the batch and every part in it succeeded; else None.

    The answer is a batch holding one changeset response, whose parts are HTTP responses in the order
    of the requests. Anything that does not read that way is not taken for a success.
    """
    outer = _BOUNDARY.search(content_type)
    if status != 202 or outer is None:
        return None
    inner = _BOUNDARY.search(body.decode("utf-8", errors="replace"))
    if inner is None:
        return None
    delimiter = f"--{inner.group(1)}".encode()
    sections = body.split(delimiter)
    # [0] is the batch part's header, [-1] what follows the closing "--"; the parts lie between.
    parts = sections[1:-1]
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        return None
    etags: list[str] = []
    for part in parts:
        status_line = _STATUS_LINE.search(part)
        if status_line is None or not 200 <= int(status_line.group(1)) < 300:
            return None
        etag = _ETAG_HEADER.search(part, status_line.end())
        etags.append(etag.group(1).decode() if etag else "")
    return etags


def _http_date() -> str:
    # The RFC 1123 date StorageHeadersPolicy sets on every sub-request (English names whatever the locale).
    return format_date_time(time.time())
