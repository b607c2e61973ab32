"""Which `EventQueue` a process sends to: a registry of queue backends, chosen by the `QUEUE_BACKEND` setting.

Each backend may also register the operator's view of its dead letters (`DeadLetterQueues`): the same
name picks both, so the CLI lists and replays where the app parks.

The app ships the backends Azure and the benchmarks use (`servicebus`, `memory`). A host that brings its own
queue registers it under a name before the first `services().queue`: the dev host registers `local`, its
SQLite stand-in for Service Bus (`devhost.local_queue`), so the app package never imports the dev host.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from azure.core.credentials import TokenCredential

from shared.config import ConfigurationError, Settings
from shared.queueing.memory import InMemoryQueue
from shared.queueing.messages import DeadLetterQueues, EventQueue
from shared.queueing.servicebus import ServiceBusEventQueue
from shared.queueing.servicebus_dead_letters import ServiceBusDeadLetters

CredentialSource = Callable[[], TokenCredential]
# A backend is built from the settings and, for one that signs in with the app's identity, a credential source
# (None outside the composition root: such a backend then refuses a setting that needs it).
QueueFactory = Callable[[Settings, CredentialSource | None], EventQueue]
DeadLetterFactory = Callable[[Settings, CredentialSource | None], DeadLetterQueues]

_factories: dict[str, QueueFactory] = {}
_dead_letter_factories: dict[str, DeadLetterFactory] = {}
_factories_lock = threading.Lock()


def register_queue_backend(name: str, factory: QueueFactory) -> None:
    """Makes `QUEUE_BACKEND=<name>` build its queue with `factory(settings)`; a second call replaces it."""
    with _factories_lock:
        _factories[name.strip().lower()] = factory


def register_dead_letter_backend(name: str, factory: DeadLetterFactory) -> None:
    """Makes `QUEUE_BACKEND=<name>` show its dead letters through `factory(settings, credential)`."""
    with _factories_lock:
        _dead_letter_factories[name.strip().lower()] = factory


def build_dead_letters(settings: Settings, *, credential: CredentialSource | None = None) -> DeadLetterQueues:
    """The dead letters of the backend `settings.queue_backend` names; ConfigurationError if it has none."""
    with _factories_lock:
        factory = _dead_letter_factories.get(settings.queue_backend)
    if factory is None:
        raise ConfigurationError(
            f"QUEUE_BACKEND is {settings.queue_backend!r}, which has no dead-letter view in this process; "
            "'servicebus' has one, 'local' once the dev host's queue is registered"
        )
    return factory(settings, credential)


def registered_queue_backends() -> list[str]:
    with _factories_lock:
        return sorted(_factories)


def build_queue(settings: Settings, *, credential: CredentialSource | None = None) -> EventQueue:
    """The queue `settings.queue_backend` names; ConfigurationError when no backend of that name exists."""
    with _factories_lock:
        factory = _factories.get(settings.queue_backend)
    if factory is None:
        known = ", ".join(registered_queue_backends())
        raise ConfigurationError(
            f"QUEUE_BACKEND is {settings.queue_backend!r}, which no queue backend in this process is "
            f"registered as (registered: {known}); 'local' exists only under the dev host (python -m devhost)"
        )
    return factory(settings, credential)


def _service_bus(settings: Settings, credential: CredentialSource | None) -> EventQueue:
    return ServiceBusEventQueue.from_settings(settings, credential=credential)


def _in_memory(settings: Settings, credential: CredentialSource | None) -> EventQueue:
    return InMemoryQueue()


def _service_bus_dead_letters(settings: Settings, credential: CredentialSource | None) -> DeadLetterQueues:
    return ServiceBusDeadLetters.from_settings(settings, credential=credential)


register_queue_backend("servicebus", _service_bus)
register_queue_backend("memory", _in_memory)
register_dead_letter_backend("servicebus", _service_bus_dead_letters)
