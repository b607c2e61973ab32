"""A counting reverse proxy in front of Azurite: what the app asks Table Storage, seen on the wire.

Point the app's STORAGE_CONNECTION_STRING at `proxy.connection_string` and every request its Azure SDK
client sends passes through here on its way to the real Azurite and is recorded (method, path). Nothing
of the app is replaced or patched, so the count is what a storage account would bill.

    with CountingStorageProxy(azurite_connection_string) as proxy:
        ... run the app against proxy.connection_string ...
        proxy.clear(); do one request; proxy.requests_to("t1users") -> [("GET", "/devstoreaccount1/...")]
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.azurite import connection_string

# Hop-by-hop headers are the proxy's own business; the body is re-sent with a Content-Length.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
_POINT_READ = re.compile(r"\(PartitionKey='[^']*',RowKey='[^']*'\)$")


def is_point_read(method: str, path: str) -> bool:
    """GET of one entity by PartitionKey and RowKey (what Table Storage bills as one point read)."""
    return method == "GET" and bool(_POINT_READ.search(path.split("?", 1)[0]))


class CountingStorageProxy:
    """Forwards to Azurite's table endpoint and records each request; a context manager."""

    def __init__(self, azurite_connection_string: str) -> None:
        match = re.search(r"TableEndpoint=http://127\.0\.0\.1:(\d+)/", azurite_connection_string)
        if not match:
            raise ValueError("expected an Azurite connection string with a TableEndpoint on 127.0.0.1")
        self._upstream_port = int(match.group(1))
        self._lock = threading.Lock()
        self._seen: list[tuple[str, str]] = []
        self._labels: list[str] = []
        self._label: Callable[[], str] = lambda: ""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def connection_string(self) -> str:
        return connection_string(self._server.server_address[1])

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
            self._labels.clear()

    def label_with(self, label: Callable[[], str]) -> None:
        """Calls `label` as each request arrives and keeps its answer beside it (e.g. the state of an
        operation in the sandbox, which tells requests before Microsoft got its answer from those after)."""
        self._label = label

    def labelled_requests(self) -> list[tuple[str, str, str]]:
        """(label, method, path) of every request since `clear`, in the order they arrived."""
        with self._lock:
            return [
                (label, method, path) for label, (method, path) in zip(self._labels, self._seen, strict=True)
            ]

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request since `clear`, in the order they arrived."""
        with self._lock:
            return list(self._seen)

    def requests_to(self, table: str) -> list[tuple[str, str]]:
        """(method, path) of every request since `clear` that named `table` (entity or table operations)."""
        pattern = re.compile(rf"/{re.escape(table)}(\(|$|\?)")
        with self._lock:
            return [(method, path) for method, path in self._seen if pattern.search(path.split("?", 1)[0])]

    def _record(self, method: str, path: str) -> None:
        # Labelled before forwarding: the app waits for this answer, so the label is the world it saw.
        label = self._label()
        with self._lock:
            self._seen.append((method, path))
            self._labels.append(label)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # the SDK keeps its connection open
            # Headers and body leave in two writes; with Nagle on, the second waits for the client's delayed
            # ACK (~40 ms), which would make every counted request look slow to a benchmark.
            disable_nagle_algorithm = True

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy._record(self.command, self.path)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream = http.client.HTTPConnection("127.0.0.1", proxy._upstream_port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            # The SDK sends GET, POST, PUT, PATCH, MERGE and DELETE; http.server dispatches on do_<METHOD>.
            do_GET = do_POST = do_PUT = do_PATCH = do_MERGE = do_DELETE = _forward  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def __enter__(self) -> CountingStorageProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
