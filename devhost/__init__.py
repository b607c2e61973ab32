"""Dev host: runs the functions that `function_app.py` registers, without Azure Functions Core Tools.

`http_host` serves the HTTP triggers under `/api` like `func start`; `queue_runner` feeds the Service Bus
trigger from the local SQLite queue (`shared.queueing.local_queue`); `python -m devhost` runs both, and
`python -m devhost.stack` (`make dev`) adds Azurite and the marketplace sandbox. Azure runs none of this.
"""

from __future__ import annotations

import threading
import weakref

import azure.functions as func

_registrations: weakref.WeakKeyDictionary[func.FunctionApp, list[func.decorators.function_app.Function]] = (
    weakref.WeakKeyDictionary()
)
_registrations_lock = threading.Lock()


def registered_functions(app: func.FunctionApp) -> list[func.decorators.function_app.Function]:
    """The app's functions as the Python worker indexes them, built once per app and shared by both hosts."""
    with _registrations_lock:
        if app not in _registrations:
            # get_functions() remembers the names it has seen to refuse duplicates, so a second call on the
            # same app (by a test, or another tool in this process) would refuse every name; start afresh.
            app.functions_bindings = None
            _registrations[app] = app.get_functions()
        return _registrations[app]
