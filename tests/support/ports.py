"""Free loopback ports, a port where nothing ever answers, and waiting for a server to listen."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port held for the block but never listened on: every connection is refused at once.

    Unlike a fixed "nobody is there" port (or a free port released again), no other process can start
    listening on it while the block runs, so a call to it can never reach someone else's server.
    """
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]
