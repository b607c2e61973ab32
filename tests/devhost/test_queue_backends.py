"""The queue backend seam: the app builds its queue from `QUEUE_BACKEND` through a registry, and only the dev
host (or a test stack standing in for it) registers `local`, so the app package never imports `devhost`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devhost.local_queue import LocalQueue, register_local_queue
from shared.config import ConfigurationError, Settings
from shared.queueing import backends
from shared.queueing.memory import InMemoryQueue

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry as the app ships it, whatever earlier tests in this process registered."""
    shipped = {name: factory for name, factory in backends._factories.items() if name != "local"}
    monkeypatch.setattr(backends, "_factories", shipped)


def test_the_app_ships_servicebus_and_memory(registry: None) -> None:
    assert backends.registered_queue_backends() == ["memory", "servicebus"]
    assert isinstance(backends.build_queue(Settings(queue_backend="memory")), InMemoryQueue)


def test_local_without_the_dev_host_is_a_configuration_error_naming_the_setting(registry: None) -> None:
    with pytest.raises(ConfigurationError, match=r"QUEUE_BACKEND is 'local'.*registered: memory, servicebus"):
        backends.build_queue(Settings(queue_backend="local"))


def test_an_unknown_backend_is_a_configuration_error(registry: None) -> None:
    with pytest.raises(ConfigurationError, match="QUEUE_BACKEND is 'rabbit'"):
        backends.build_queue(Settings(queue_backend="rabbit"))


def test_the_dev_host_registers_local_at_the_configured_path(registry: None, tmp_path: Path) -> None:
    register_local_queue()
    settings = Settings(queue_backend="local", local_queue_path=str(tmp_path / "q.sqlite3"))
    queue = backends.build_queue(settings)
    assert isinstance(queue, LocalQueue)
    assert queue.path == tmp_path / "q.sqlite3"
    queue.close()


def test_importing_the_function_app_imports_no_dev_host_module() -> None:
    probe = "import sys, function_app; print([m for m in sys.modules if m.split('.')[0] == 'devhost'])"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"
