"""Session-wide fixtures: one Azurite for the whole run, and a unique table prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from tests.support.stack import Stack

from tests.support.azurite import running_azurite


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    with running_azurite() as conn:
        yield conn


@pytest.fixture
def table_prefix() -> str:
    """Tables are named per test so tests never see each other's rows (names: letters and digits only)."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Debian chromium per test module (see tests/support/browser.py)."""
    from tests.support.browser import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> Iterator[Stack]:
    """The whole local stack (sandbox, Azurite, dev host, worker) for one test; see tests/support/stack.py."""
    from tests.support.stack import running_stack

    with running_stack(
        monkeypatch, tmp_path, connection_string=azurite_connection_string, table_prefix=table_prefix
    ) as running:
        yield running
