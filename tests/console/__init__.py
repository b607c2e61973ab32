"""Console test harness: the portal's running stack (dev host + sandbox + Azurite) and the console's people.

Operators are the sandbox's publisher staff (identities.example.json): the same tid+oid, and the console
roles their ID tokens carry. `operator_session` mints the cookie the sign-in would set for them, roles
included; `tests/console/test_console_gate.py` also signs them in for real through the sandbox's Entra ID.
"""

from __future__ import annotations

from shared.domain.operators import OperatorRole
from shared.queueing.messages import QueueMessage, QueueUnavailableError
from shared.web.current_user import SignedInUser
from tests.portal import ADELE, CONTOSO

PUBLISHER_TENANT = "aaaaaaaa-0000-4000-8000-000000000001"
OLIVIA = SignedInUser(
    PUBLISHER_TENANT,
    "aaaaaaaa-0000-4000-8000-0000000000a1",
    "Olivia Operator",
    "olivia.ops@publisher.example",
    "olivia.ops@publisher.onmicrosoft.com",
    operator_roles=frozenset({OperatorRole.ADMIN.value}),
)
RAVI = SignedInUser(
    PUBLISHER_TENANT,
    "aaaaaaaa-0000-4000-8000-0000000000a2",
    "Ravi Reader",
    "ravi.reader@publisher.example",
    "ravi.reader@publisher.onmicrosoft.com",
    operator_roles=frozenset({OperatorRole.READER.value}),
)
# A customer's tenant admin who assigned our role names to themselves in their own tenant.
SELF_PROMOTED = SignedInUser(
    CONTOSO,
    "11111111-0000-4000-8000-0000000000f1",
    "Contoso admin who assigned themselves Publisher.Admin",
    "self.promoted@contoso.com",
    "self.promoted@contoso.onmicrosoft.com",
    operator_roles=frozenset({OperatorRole.ADMIN.value}),
)
BUYER = ADELE
CONSOLE = "/api/console"


class RefusingQueue:
    """The events queue during an outage (Service Bus unreachable): every send is refused."""

    def send(self, message: QueueMessage) -> None:
        raise QueueUnavailableError("service bus unreachable")
