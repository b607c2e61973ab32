"""Dev host: runs the functions that `function_app.py` registers, without Azure Functions Core Tools.

`http_host` serves the HTTP triggers under `/api` like `func start`; `queue_runner` feeds the Service Bus
trigger from the local SQLite queue (`local_queue`), in worker instances of its own (`worker_instances`,
`queue_instance`); `python -m devhost` runs both, and `python -m devhost.stack` (`make dev`) adds Azurite
and the marketplace sandbox. Azure runs none of this.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import threading
import weakref
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import azure.functions as func

from shared.config import LOCAL_STACK_MARKER

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


def load_function_app() -> func.FunctionApp:
    """`function_app.py`'s FunctionApp, imported from the project root as the Functions host imports it."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    app: func.FunctionApp = importlib.import_module("function_app").app
    return app


def function_name(function: func.decorators.function_app.Function) -> str:
    """The function's name: the one given to the decorator, else (as the worker does) its Python name."""
    return function.get_function_name() or function.get_user_function().__name__


PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEV_ENV_FILE = Path(__file__).with_name("dev.env")
HOST_JSON = PROJECT_ROOT / "host.json"
# The stack's ports and data folder: settable from the environment, used to fill `${...}` in dev.env.
STACK_DEFAULTS = {
    "AZURITE_PORT": "10002",
    "SANDBOX_HTTP_PORT": "7080",
    "SANDBOX_HTTPS_PORT": "7443",
    "DEVHOST_PORT": "7071",
    "DEVHOST_STATE_DIR": ".local",
}
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def stack_variables(env: Mapping[str, str]) -> dict[str, str]:
    """Ports and data folder of the local stack: the environment's values, else the defaults."""
    values = {name: env.get(name, "").strip() or default for name, default in STACK_DEFAULTS.items()}
    values["DEVHOST_STATE_DIR"] = str((PROJECT_ROOT / values["DEVHOST_STATE_DIR"]).resolve())
    return values


def read_dev_env(env: Mapping[str, str], path: Path = DEV_ENV_FILE) -> dict[str, str]:
    """The settings in dev.env (`NAME=value` lines, `#` comments) with `${...}` filled from the stack."""
    variables = stack_variables(env)
    settings: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}:{number}: expected NAME=value")
        settings[name.strip()] = _expand(value.strip(), variables, f"{path}:{number}")
    return settings


def _expand(value: str, variables: Mapping[str, str], where: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match[1] not in variables:
            raise ValueError(f"{where}: unknown placeholder ${{{match[1]}}}; known: {', '.join(variables)}")
        return variables[match[1]]

    return _PLACEHOLDER.sub(substitute, value)


def mark_local_stack(environ: MutableMapping[str, str]) -> None:
    """Tells the app it runs under the dev host, the one place dev.env's public secrets are allowed."""
    environ[LOCAL_STACK_MARKER] = "1"


def apply_dev_env(environ: MutableMapping[str, str]) -> None:
    """Fills every setting the environment leaves unset from dev.env; what is set already wins."""
    for name, value in read_dev_env(environ).items():
        if not environ.get(name):
            environ[name] = value


def host_json_setting(*keys: str, path: Path = HOST_JSON) -> Any:
    """A value of host.json (`"extensions", "serviceBus", "maxConcurrentSessions"`), so the dev host runs with
    the limits Azure's host reads from the same file rather than numbers of its own that could drift."""
    value: Any = json.loads(path.read_text(encoding="utf-8"))
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise KeyError(f"{path} has no {'.'.join(keys)}")
        value = value[key]
    return value
