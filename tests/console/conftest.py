"""One running stack per console test module (see tests/portal for the harness)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.portal import Portal, running_portal


@pytest.fixture(scope="module")
def portal(azurite_connection_string: str) -> Iterator[Portal]:
    with running_portal(azurite_connection_string, "c" + uuid.uuid4().hex[:10]) as running:
        yield running
