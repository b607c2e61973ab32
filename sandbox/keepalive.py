"""A Werkzeug request handler that keeps HTTP/1.1 connections open, as Microsoft's endpoints do.

Werkzeug's development server answers every request with `Connection: close`, because after a response it
cannot tell where the unread rest of a request body ends and the next request begins. Over HTTPS that costs
the client a new TLS handshake per call (14.5 ms each on the 2-core machine), far more than the sandbox's
own work. This handler knows where the body ends (Content-Length, or the chunked encoding's last chunk):
the application reads through a stream that stops there, whatever it leaves is skipped after it returns,
and the next request on the connection starts right after. Responses are buffered and sent with a
Content-Length, which is what a keep-alive client needs to find their end; the sandbox's answers are small.

Nagle's algorithm is off on every connection (TCP_NODELAY): the handler writes the status and headers, then
the body, and with Nagle on the body waited for the client's delayed ACK of the headers, 40 ms on Linux, on
every keep-alive call (GetSubscription took 45 ms instead of 5).

A connection idle for `IDLE_SECONDS` is closed, so a client that keeps one open does not hold a server
thread for ever; a client that asks for `Connection: close` (or speaks HTTP/1.0) still gets it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from typing import IO, Any, cast

from werkzeug.exceptions import ClientDisconnected
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

log = logging.getLogger("sandbox.server")

IDLE_SECONDS = 15.0
_NO_BODY_STATUSES = {204, 304}


def _skip_rest(stream: Any) -> None:
    # Bounded by the stream itself: a LimitedStream stops at Content-Length, DechunkedInput at the last chunk.
    while stream.read(65536):
        pass


class KeepAliveRequestHandler(WSGIRequestHandler):
    """Runs the WSGI app like Werkzeug's handler but leaves the connection open for the next request."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS  # applied to the socket by StreamRequestHandler.setup

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        try:
            body = self._body_stream(environ)
        except ValueError:
            self.close_connection = True
            self.send_error(400, "bad Content-Length")
            return
        status, headers, chunks = self._call_app(environ)
        try:
            _skip_rest(body)
        except (ClientDisconnected, OSError):
            self.close_connection = True
            return
        self._send(status, headers, b"".join(chunks))

    def _body_stream(self, environ: dict[str, Any]) -> Any:
        if environ.get("wsgi.input_terminated"):
            return environ["wsgi.input"]  # chunked: Werkzeug's DechunkedInput ends at the last chunk
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length < 0:
            raise ValueError(length)
        # The handler's rfile is a buffered socket reader: an IO[bytes] in all but its declared type.
        stream = LimitedStream(cast("IO[bytes]", self.rfile), length)
        environ["wsgi.input"] = stream
        environ["wsgi.input_terminated"] = True  # the app may read to the end: the end is the body's
        return stream

    def _call_app(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        answer: list[Any] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")]]
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status, headers]
            return chunks.append  # the legacy write() callable

        try:
            result: Iterable[bytes] = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            log.exception("sandbox failed on %s %s", self.command, self.path)
            self.close_connection = True
            return "500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")], [b"Internal Server Error"]
        return answer[0], answer[1], chunks

    def _send(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        code_text, _, reason = status.partition(" ")
        code = int(code_text)
        self.send_response(code, reason)
        names = set()
        for name, value in headers:
            if name.lower() == "connection":
                self.close_connection = self.close_connection or value.lower() == "close"
                continue
            self.send_header(name, value)
            names.add(name.lower())
        if "content-length" not in names and code not in _NO_BODY_STATUSES and code >= 200:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code not in _NO_BODY_STATUSES:
            self.wfile.write(body)
        self.wfile.flush()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Only failures get Werkzeug's access line. Every API call and control action that worked already
        # has its own line (sandbox.fulfillment with the request and correlation ids, sandbox.marketplace,
        # sandbox.webhooks), and writing a second one per request was CPU taken from the app in a burst.
        try:
            status = int(code)
        except ValueError:  # "-": no status was sent
            status = 0
        if 0 < status < 400:
            return
        super().log_request(code, size)

    def log_error(self, format: str, *args: Any) -> None:
        # An idle keep-alive connection timing out is how it is meant to end, not an error.
        if format.startswith("Request timed out"):
            return
        super().log_error(format, *args)
