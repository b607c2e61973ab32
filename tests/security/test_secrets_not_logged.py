"""Purchase tokens and CSP setup codes never reach a log line (issue 7, item 5).

`python -m devhost` runs as its own process at DEBUG, with the sandbox playing Microsoft and Azurite, and
gets real requests over 127.0.0.1 that carry recognisable tokens and codes: a genuine purchase token, an
unknown one, a malformed one, setup codes in the query and (links made before) in the path, signed in and
out, a sign-in callback code, and a request line so malformed that Werkzeug itself logs it. Everything the
process writes (every logger at every level, the request log, Werkzeug's lines, stdout and stderr) must
hold none of them. Before the fix, a setup code in the path was in the request log and in "sign-in
required", and Werkzeug's "Bad request syntax" line quoted a `code=` in full.

What the Functions host records is checked where it is decided: host.json keeps query-string tracing off
(the host then records a request's path, not its query), and setup links carry the code in the query.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from devhost import PROJECT_ROOT
from shared.app_context import reset_services
from shared.logs import redact
from tests.devhost.test_devhost_main import start_devhost
from tests.portal import ADELE, session_cookie
from tests.support.ports import free_port, wait_for_port
from tests.support.sandbox import ControlClient, running_sandbox
from tests.support.stack import app_environment

CANARY = "LEAKCANARY"
UNKNOWN_TOKEN = f"{CANARY}unknownToken+/0123456789abcdef=="
MALFORMED_TOKEN = f"{CANARY}malformed\r\nX-Injected: 1"
SETUP_CODE = f"{CANARY}setupCode_0123456789abcdefghijklmnop"
OLD_SETUP_CODE = f"{CANARY}pathCode_0123456789abcdefghijklmnopq"
AUTH_CODE = f"{CANARY}authorizationCode"


def test_host_json_keeps_query_strings_out_of_request_telemetry() -> None:
    """The Functions host strips the query from the URL it records unless this is switched on."""
    application_insights = json.loads((PROJECT_ROOT / "host.json").read_text())["logging"][
        "applicationInsights"
    ]
    assert application_insights.get("enableQueryStringTracing", False) is False


@dataclass
class RunningDevHost:
    url: str
    port: int
    control: ControlClient
    proc: subprocess.Popen[str]

    def stop_and_read(self) -> str:
        """Stops the process as Ctrl-C would and returns everything it wrote to stdout and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.communicate(timeout=30)[0]


@pytest.fixture
def devhost(
    tmp_path: Path, azurite_connection_string: str, table_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningDevHost]:
    """`python -m devhost` at DEBUG against the sandbox and Azurite, stdout and stderr captured together."""
    port = free_port()
    with running_sandbox(landing_url=f"http://127.0.0.1:{port}/api/landing") as sandbox:
        settings = app_environment(
            sandbox,
            connection_string=azurite_connection_string,
            table_prefix=table_prefix,
            queue_path=tmp_path / "queue.sqlite3",
            app_port=port,
        )
        for name, value in settings.items():  # the test mints session cookies with the same secret
            monkeypatch.setenv(name, value)
        reset_services()
        proc, _ = start_devhost(tmp_path, **{**settings, "LOG_LEVEL": "DEBUG", "DEVHOST_PORT": str(port)})
        running = RunningDevHost(f"http://127.0.0.1:{port}", port, ControlClient(sandbox.http_url), proc)
        try:
            wait_for_port(port, timeout=30)
            yield running
        finally:
            running.stop_and_read()
            reset_services()


def malformed_request_line(port: int, target: str) -> None:
    """Sends a request line with one word too many: Werkzeug answers 400 and logs the line itself."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(f"GET {target} extra HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        raw.recv(4096)


def drive(devhost: RunningDevHost) -> list[str]:
    """Every request that carries a secret; returns the secrets as they could appear in a log."""
    genuine = devhost.control.buy("basic")["token"]
    anonymous = requests.Session()
    signed_in = requests.Session()
    name, value = session_cookie(ADELE)
    signed_in.cookies.set(name, value, domain="127.0.0.1", path="/")
    app = devhost.url
    for client, url in [
        (anonymous, f"{app}/api/landing?token={quote(genuine, safe='')}"),
        (anonymous, f"{app}/api/landing?token={quote(UNKNOWN_TOKEN, safe='')}"),
        (anonymous, f"{app}/api/landing?token={quote(MALFORMED_TOKEN, safe='')}"),
        (anonymous, f"{app}/api/portal/setup?code={SETUP_CODE}"),
        (signed_in, f"{app}/api/portal/setup?code={SETUP_CODE}"),
        (anonymous, f"{app}/api/portal/setup/{OLD_SETUP_CODE}"),
        (signed_in, f"{app}/api/portal/setup/{OLD_SETUP_CODE}"),
        (anonymous, f"{app}/api/auth/callback?code={AUTH_CODE}&state=x"),
    ]:
        assert client.get(url, allow_redirects=False, timeout=30).status_code < 500, url
    malformed_request_line(devhost.port, f"/api/portal/setup?code={SETUP_CODE}")
    malformed_request_line(devhost.port, f"/api/landing?token={quote(UNKNOWN_TOKEN, safe='')}")
    return [CANARY, genuine, quote(genuine, safe=""), genuine[:16], quote(genuine[:16], safe="")]


def test_tokens_and_codes_never_reach_the_dev_hosts_output(devhost: RunningDevHost) -> None:
    secrets = drive(devhost)

    text = devhost.stop_and_read()

    assert "GET /api/landing -> 400" in text, "the request log was not captured: the test would prove nothing"
    assert "Bad request syntax" in text
    leaked = [secret for secret in secrets if secret.lower() in text.lower()]
    assert leaked == [], [
        line for line in text.splitlines() if any(s.lower() in line.lower() for s in leaked)
    ]


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("GET /api/landing?token=ab%2Bcd HTTP/1.1", "ab%2Bcd"),
        ("/api/portal/setup?code=Abc_123-xyz", "Abc_123-xyz"),
        ("/api/portal/setup/Abc_123-xyz -> 303", "Abc_123-xyz"),
        ("/api/auth/callback?state=s&code=0.AQAbc", "0.AQAbc"),
        ("/api/auth/signin?next=%2Fapi%2Fportal%2Fsetup%3Fcode%3DAbc_123", "Abc_123"),
        ("/api/auth/signin?next=%2Fapi%2Fportal%2Fsetup%2FAbc_123", "Abc_123"),
        # Found by a hostile review: encoded twice, an encoded or upper-case name, a doubled or encoded slash.
        ("/api/auth/signin?next=%2Fapi%2Flanding%253Ftoken%253DAbc_123", "Abc_123"),
        ("/api/auth/signin?next=%2Fapi%2Fportal%2Fsetup%253Fcode%253DAbc_123", "Abc_123"),
        ("/api/auth/signin?next=%252Fapi%252Flanding%25253Ftoken%25253DAbc_123", "Abc_123"),
        ("GET /api/landing?tok%65n=Abc_123 HTTP/1.1", "Abc_123"),
        ("/api/portal/setup?c%6Fde=Abc_123", "Abc_123"),
        ("/api/landing?TOK%45N=Abc_123", "Abc_123"),
        ("/api/portal//setup/Abc_123 -> 308", "Abc_123"),
        ("/api/portal/%2Fsetup/Abc_123 -> 404", "Abc_123"),
        ("/api/portal%2Fsetup%2FAbc_123 -> 404", "Abc_123"),
    ],
)
def test_redaction_scrubs_tokens_and_codes_in_any_url(line: str, secret: str) -> None:
    assert secret not in redact(line)
    assert "[redacted]" in redact(line)


def test_redaction_leaves_numbers_named_like_codes_alone() -> None:
    assert redact("status_code=500 error_code=E42") == "status_code=500 error_code=E42"
