"""One reading of a webhook message's `receivedAt`, shared by the worker (how far behind Microsoft's answer
window it is) and telemetry (answer latency). The webhook always writes it with an offset; a time without
one did not come from it and is not known, in both places, rather than guessed as UTC in one and ignored in
the other (a guess hours off would count the event as late, or as answered before it arrived)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared import telemetry
from shared.queueing.messages import received_at, webhook_message
from tests.support.telemetry import recording_telemetry


def test_what_the_webhook_writes_is_read_back() -> None:
    now = datetime.now(UTC)
    message = webhook_message(
        {"id": "op"}, received_at=now.isoformat(timespec="milliseconds"), correlation_id="c"
    )
    assert abs(received_at(message.body) - now) < timedelta(milliseconds=1)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00+00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))),
        ("2024-05-01T10:00:00", None),  # naive: not known
        ("yesterday", None),
        ("", None),
        (None, None),
        (1714557600, None),
    ],
)
def test_received_at(value: object, expected: datetime | None) -> None:
    assert received_at({"receivedAt": value}) == expected
    assert received_at({}) is None


def test_telemetry_measures_no_answer_latency_from_a_naive_time() -> None:
    with recording_telemetry() as recorded:
        with telemetry.webhook_event(received_at({"receivedAt": "2024-05-01T10:00:00"}), "ChangePlan"):
            telemetry.answered(True)
        with telemetry.webhook_event(received_at({"receivedAt": datetime.now(UTC).isoformat()}), "Reinstate"):
            telemetry.answered(True)

    actions = [point.attributes["action"] for point in recorded.points(telemetry.ANSWER_LATENCY)]
    assert actions == ["Reinstate"]
