"""A threaded HTTP server on 127.0.0.1 that answers from a script and records every request.

Tests queue `ScriptedResponse`s (status, headers, body, optional delay before answering) and then read
`server.requests` to see exactly what went over the socket. When the script runs out the server answers
418 with a JSON error naming the request, so a test that sends more than it scripted fails loudly (418 is
not retryable, so a client under test does not mask it with retries).

    with ScriptedServer() as server:
        server.script(ScriptedResponse(200, body={"id": "..."}))
        ... call something pointed at server.base_url ...
        assert server.requests[0].method == "GET"
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["RecordedRequest", "ScriptedResponse", "ScriptedServer"]


@dataclass(frozen=True)
class ScriptedResponse:
    """One answer. A dict or list body is sent as JSON; `delay` seconds pass before anything is sent."""

    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def body_bytes(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")

    def all_headers(self) -> dict[str, str]:
        headers = {name.lower(): value for name, value in self.headers.items()}
        if isinstance(self.body, dict | list):
            headers.setdefault("content-type", "application/json; charset=utf-8")
        return headers


@dataclass(frozen=True)
class RecordedRequest:
    """A request as it arrived: header names lower-cased, query parsed, body raw."""

    method: str
    target: str  # path and query exactly as sent
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_port: int
    base_url: str

    @property
    def url(self) -> str:
        return self.base_url + self.target

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        recorded = RecordedRequest(
            method=self.command,
            target=self.path,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            client_port=self.client_address[1],
            base_url=self.server.base_url,
        )
        reply = self.server.owner.record_and_pop(recorded)
        if reply.delay:
            time.sleep(reply.delay)
        self._answer(reply)

    def _answer(self, reply: ScriptedResponse) -> None:
        payload = reply.body_bytes()
        try:
            self.send_response(reply.status)
            for name, value in reply.all_headers().items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (a read-timeout test); nothing is listening for the answer.
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the recorded requests are the log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, owner: ScriptedServer) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.owner = owner
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}"


class ScriptedServer:
    """Answers from a FIFO of scripted responses; `port=0` picks a free port."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._lock = threading.Lock()
        self._script: deque[ScriptedResponse] = deque()
        self._requests: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the scripted server is not running")
        return self._server.base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def unanswered(self) -> int:
        """Scripted responses not yet used."""
        with self._lock:
            return len(self._script)

    def script(self, *responses: ScriptedResponse) -> None:
        with self._lock:
            self._script.extend(responses)

    def record_and_pop(self, request: RecordedRequest) -> ScriptedResponse:
        with self._lock:
            self._requests.append(request)
            if self._script:
                return self._script.popleft()
        message = f"scripted server: no response left for {request.method} {request.target}"
        return ScriptedResponse(418, body={"error": {"code": "NoScript", "message": message}})

    def start(self) -> ScriptedServer:
        self._server = _Server(self._port, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="scripted-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
