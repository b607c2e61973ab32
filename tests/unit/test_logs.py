"""Structured logs carry the correlation ids and never a secret."""

from __future__ import annotations

import io
import json
import logging

import pytest

from shared import logs

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def json_record(message: str, *args: object, **extra: object) -> dict[str, object]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("test.logs.json")
    logger.handlers, logger.propagate = [handler], False
    logger.warning(message, *args, extra=extra)
    return json.loads(stream.getvalue())


def test_records_are_json_with_the_context_ids() -> None:
    with logs.log_context(correlation_id="c-1", subscription_id="s-1"), logs.log_context(operation_id="o-1"):
        entry = json_record("handled %s", "it", action="Suspend")

    assert entry["message"] == "handled it"
    assert entry["level"] == "WARNING"
    assert (entry["correlation_id"], entry["subscription_id"], entry["operation_id"]) == ("c-1", "s-1", "o-1")
    assert entry["action"] == "Suspend"


def test_context_ids_end_with_their_block() -> None:
    with logs.log_context(correlation_id="inside"):
        pass
    assert "correlation_id" not in json_record("after")


@pytest.mark.parametrize(
    "secret",
    [
        f"Bearer {JWT}",
        JWT,
        "AccountKey=c2VjcmV0LWtleQ==;EndpointSuffix=core.windows.net",
        "SharedAccessKey=abc123def",
        "https://app/api/landing?token=ab%2Bcd",
        "client_secret=hunter2",
    ],
)
def test_secrets_in_messages_are_redacted(secret: str) -> None:
    entry = json_record("calling with %s", secret)
    assert "[redacted]" in str(entry["message"])
    for fragment in ("c2lnbmF0dXJl", "c2VjcmV0LWtleQ", "abc123def", "ab%2Bcd", "hunter2"):
        assert fragment not in str(entry["message"])


def test_secret_fields_in_extra_are_redacted() -> None:
    entry = json_record("token check", authorization=f"Bearer {JWT}", client_secret="hunter2", tenant="t-1")
    assert entry["authorization"] == "[redacted]"
    assert entry["client_secret"] == "[redacted]"
    assert entry["tenant"] == "t-1"


def test_under_the_functions_host_its_handler_gets_ids_and_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    host_handler = logging.StreamHandler(stream)  # stands where the Python worker's handler is in Azure
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [host_handler])
    monkeypatch.setenv("FUNCTIONS_WORKER_RUNTIME", "python")

    logs.configure("INFO")
    logs.configure("INFO")  # idempotent
    with logs.log_context(correlation_id="c-9"):
        logging.getLogger("test.logs.host").warning("got %s", f"Bearer {JWT}")

    assert root.handlers == [host_handler]
    assert len(host_handler.filters) == 1
    line = stream.getvalue().strip()
    assert line == "got Bearer [redacted] [correlation_id=c-9]"
