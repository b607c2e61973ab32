"""Fixtures every sandbox test module shares; each module defines its own `sandbox` (its settings differ)."""

from __future__ import annotations

import pytest

from sandbox.server import RunningSandbox
from tests.support.sandbox import ApiCaller, ControlClient


@pytest.fixture
def control(sandbox: RunningSandbox) -> ControlClient:
    """The control API of the module's sandbox, reset so every test starts from the catalog alone."""
    client = ControlClient(sandbox.http_url)
    client.reset()
    return client


@pytest.fixture
def api(sandbox: RunningSandbox) -> ApiCaller:
    return ApiCaller(sandbox)
