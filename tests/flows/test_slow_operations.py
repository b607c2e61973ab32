"""An operation Microsoft takes longer than five minutes to finish is still followed to its end.

Before, the 60th look (five minutes) gave up and left the record to a reconciliation that never visits a
subscription without drift, so the portal and the console showed it in progress for good.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from shared.domain.tracking_schedule import FAST_LOOKS
from shared.queueing.messages import MessageKind
from shared.workflows.sync import utcnow
from shared.workflows.tracking import track_operation
from tests.portal import Portal, running_portal


@pytest.fixture(scope="module")
def portal(azurite_connection_string: str) -> Iterator[Portal]:
    with running_portal(azurite_connection_string, "t" + uuid.uuid4().hex[:10]) as running:
        yield running


def test_a_look_after_five_minutes_schedules_another_instead_of_giving_up(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=4)
    operation_id = str(portal.control.change_quantity(subscription_id, 6)["operationId"])
    before = len(portal.services.queue.messages)  # type: ignore[attr-defined]

    track_operation(
        subscription_id, operation_id, FAST_LOOKS - 1, "slow-op", ports=portal.services.tracking_ports
    )

    (look,) = portal.services.queue.messages[before:]  # type: ignore[attr-defined]
    assert look.body["kind"] == MessageKind.TRACK
    assert look.body["attempt"] == FAST_LOOKS
    assert look.scheduled_at is not None
    assert look.scheduled_at - utcnow() > timedelta(minutes=4), "the slow looks are minutes apart"
