"""Asks a Werkzeug request handler class whether it turns Nagle's algorithm off on its connections."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

import requests
from werkzeug.serving import WSGIRequestHandler, make_server


def _report_nodelay(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    connection: socket.socket = environ["werkzeug.socket"]
    value = connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(value).encode()]


def served_with_nodelay(handler: type[WSGIRequestHandler]) -> bool:
    """True when a connection served by `handler` has TCP_NODELAY set, seen from the server's side."""
    server = make_server("127.0.0.1", 0, _report_nodelay, threaded=True, request_handler=handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        answer = requests.get(f"http://127.0.0.1:{server.server_port}/", timeout=10)
        return answer.text.strip() not in {"", "0"}
    finally:
        server.shutdown()
        server.server_close()
