"""How `function_app.py` reaches the entry modules: each is imported when its first trigger runs.

This is one of the three places the app imports anything lazily, on purpose, for cold start (the others are
the composition root, `shared.app_context`, which builds each adapter, and imports its module, on first use,
and `shared.telemetry`, which imports OpenTelemetry only when it is configured). Everywhere else imports sit
at the top of the module.

The Functions host imports `function_app` at every cold start, before any trigger runs, so that import must
stay close to a bare `import azure.functions` (`bench/import_time.py` measures both). Binding a trigger to
`entry_module("shared.entrypoints.webhook")` defers importing that module, and what it imports at top
level (templates, tokens, workflows), until the trigger's first call; from then on it is `sys.modules`'
entry, so each later call costs one dictionary lookup. A webhook-only instance never loads the portal's
Jinja2 or the sign-in's MSAL.
"""

from __future__ import annotations

import importlib
from typing import Any


class EntryModule:
    """Stands for an entry module; the first attribute read imports it (the import system's lock makes
    concurrent first calls safe), and every read is answered by the real module."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<entry module {self._name!r}, imported on first call>"


def entry_module(name: str) -> Any:
    """`name` (an entry module's dotted name), imported when first used. Typed Any: `function_app.py` names
    the real modules for the type checker under TYPE_CHECKING."""
    return EntryModule(name)
