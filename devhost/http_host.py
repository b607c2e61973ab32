"""Serves the HTTP-triggered functions of a FunctionApp the way `func start` does, without its host.

Everything is read from the app's own registrations (`app.get_functions()`): route template, methods and
auth level, so what runs here is exactly what Azure runs. Routes live under the `/api` prefix; requests and
responses are converted to and from `azure.functions.HttpRequest` / `HttpResponse` with the same rules as
the Python worker (Content-Type from mimetype and charset unless set, every Set-Cookie header kept).
Requests run on a bounded pool of threads, as many as host.json's `http.maxConcurrentRequests`; the ones
beyond wait in the listen backlog, so a burst costs waiting, not a thread (and its resources) per request.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions.decorators.http import HttpTrigger
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from devhost import function_name, host_json_setting, registered_functions
from shared.logs import get_logger, log_context, redact

FUNCTION_KEY_SETTING = "DEVHOST_FUNCTION_KEY"
DEFAULT_PORT = 7071
ROUTE_PREFIX = "api"
# Connections waiting for a free thread: enough for a burst of webhooks to queue in the kernel instead of
# being refused or retried after a dropped SYN (a second's delay each).
LISTEN_BACKLOG = 1024
_KEYED_LEVELS = {func.AuthLevel.FUNCTION, func.AuthLevel.ADMIN}

_log = get_logger(__name__)


class _PatternConverter(BaseConverter):
    """A route constraint as a regular expression; values reach the function as strings, as in Azure."""

    regex = "[^/]+"


def _converter(pattern: str, *, spans_slashes: bool = False) -> type[BaseConverter]:
    return type("Constraint", (_PatternConverter,), {"regex": pattern, "part_isolating": not spans_slashes})


# ASP.NET route constraints that Functions route templates accept, as Werkzeug converters.
_CONVERTERS: dict[str, type[BaseConverter]] = {
    "alpha": _converter(r"[A-Za-z]+"),
    "int": _converter(r"-?\d+"),
    "long": _converter(r"-?\d+"),
    "bool": _converter(r"(?i:true|false)"),
    "guid": _converter(r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}"),
    "double": _converter(r"-?\d+(?:\.\d+)?"),
    "float": _converter(r"-?\d+(?:\.\d+)?"),
    "decimal": _converter(r"-?\d+(?:\.\d+)?"),
    "datetime": _converter(r"[^/]+"),
    "segment": _converter(r"[^/]+"),
    "rest": _converter(r".*", spans_slashes=True),
}
_PARAMETER = re.compile(r"\{(?P<star>\*{1,2})?(?P<name>\w+)(?P<constraints>(?::[^}?=]+)*)(?P<optional>\?)?\}")


@dataclass(frozen=True)
class HttpFunction:
    """One HTTP trigger as registered: what the host needs to route, authorise and call it."""

    name: str
    route: str
    methods: tuple[str, ...] | None
    auth_level: func.AuthLevel
    argument: str
    user_function: Callable[..., Any]


def _werkzeug_rule(template: str) -> tuple[str, set[str]]:
    """`portal/{id:alpha}/{*rest}` -> `portal/<alpha:id>/<rest:rest>`, and the names that may be missing."""
    optional: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if match["star"]:
            # A catch-all also matches nothing at all, like ASP.NET's.
            optional.add(name)
            return f"<rest:{name}>"
        if match["optional"]:
            optional.add(name)
        constraints = [c.split("(")[0].lower() for c in match["constraints"].split(":") if c]
        # Constraints unknown here (length, min, regex...) match any segment: looser than Azure, not stricter.
        known = next((c for c in constraints if c in _CONVERTERS), "segment")
        return f"<{known}:{name}>"

    return _PARAMETER.sub(replace, template.strip("/")), optional


def _rules_for(function: HttpFunction) -> list[Rule]:
    rule, optional = _werkzeug_rule(function.route)
    path = f"/{ROUTE_PREFIX}/{rule}".rstrip("/")
    paths = [path]
    last = re.search(r"/<\w+:(\w+)>$", path)
    if last and last[1] in optional:
        # An optional last parameter also matches the route without that segment.
        paths.append(path[: last.start()] or "/")
    return [Rule(p, endpoint=function.name, methods=function.methods) for p in paths]


def _method_names(methods: Iterable[Any] | None) -> tuple[str, ...] | None:
    if not methods:
        return None  # Azure: no list means every method.
    return tuple(str(getattr(m, "value", m)).upper() for m in methods)


def http_functions(app: func.FunctionApp) -> list[HttpFunction]:
    """The HTTP triggers of `app`, read from its registrations."""
    found = []
    for function in registered_functions(app):
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger):
            continue
        name = function_name(function)
        found.append(
            HttpFunction(
                name=name,
                route=trigger.route or name,
                methods=_method_names(trigger.methods),
                auth_level=func.AuthLevel(trigger.auth_level or func.AuthLevel.FUNCTION),
                argument=trigger.name,
                user_function=function.get_user_function(),
            )
        )
    return found


def _joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    # The Functions host hands repeated headers and query keys over as one comma-joined value.
    joined: dict[str, str] = {}
    for key, value in pairs:
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def to_function_request(request: Request, route_params: Mapping[str, Any]) -> func.HttpRequest:
    return func.HttpRequest(
        method=request.method,
        url=request.url,
        headers=_joined(request.headers.items()),
        params=_joined(request.args.items(multi=True)),
        route_params={k: str(v) for k, v in route_params.items() if v is not None},
        body=request.get_data(),
    )


def to_werkzeug_response(result: object) -> Response:
    if isinstance(result, str):
        result = func.HttpResponse(result)
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"an HTTP function must return HttpResponse or str, not {type(result).__name__}")
    response = Response(result.get_body(), status=result.status_code)
    response.headers.clear()
    for key, value in result.headers.items():
        response.headers.add(key, value)
    if "content-type" not in response.headers:
        text = result.mimetype.startswith("text/")
        response.headers["Content-Type"] = (
            f"{result.mimetype}; charset={result.charset}" if text else result.mimetype
        )
    return response


def call_user_function(function: Callable[..., Any], **arguments: Any) -> Any:
    """Calls a plain or async function as the Python worker would."""
    if inspect.iscoroutinefunction(function):
        return asyncio.run(function(**arguments))
    return function(**arguments)


def loggable_path(request: Request) -> str:
    """The request path for the request log: never the query (purchase tokens, setup and sign-in codes
    travel there), and with a setup code in the path (links made before it moved to the query) redacted."""
    return redact(request.path)


class FunctionsWsgiApp:
    """WSGI application that routes `/api/...` to the app's HTTP functions."""

    def __init__(self, app: func.FunctionApp, *, function_key: str | None = None) -> None:
        self.functions = {f.name: f for f in http_functions(app)}
        self._function_key = (
            os.environ.get(FUNCTION_KEY_SETTING, "") if function_key is None else function_key
        )
        rules = [rule for f in self.functions.values() for rule in _rules_for(f)]
        self._map = Map(rules, converters=_CONVERTERS, strict_slashes=False, redirect_defaults=False)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        started = time.monotonic()
        with log_context(request_id=str(uuid.uuid4())):
            response = self._respond(request)
            _log.info(
                "%s %s -> %s",
                request.method,
                loggable_path(request),
                response.status_code,
                extra={"duration_ms": round((time.monotonic() - started) * 1000, 1)},
            )
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        try:
            name, route_params = self._map.bind_to_environ(request.environ).match()
        except HTTPException as exc:
            return Response(status=exc.code, headers=exc.get_headers() if exc.code == 405 else None)
        function = self.functions[name]
        if not self._authorised(function, request):
            return Response(status=401)
        with log_context(function=function.name):
            return self._invoke(function, request, route_params)

    def _authorised(self, function: HttpFunction, request: Request) -> bool:
        if function.auth_level not in _KEYED_LEVELS:
            return True
        if not self._function_key:
            _log.warning("%s needs a key but %s is not set", function.name, FUNCTION_KEY_SETTING)
            return False
        offered = request.headers.get("x-functions-key") or request.args.get("code") or ""
        return hmac.compare_digest(offered.encode(), self._function_key.encode())

    def _invoke(self, function: HttpFunction, request: Request, route_params: Mapping[str, Any]) -> Response:
        try:
            arguments = {function.argument: to_function_request(request, route_params)}
            return to_werkzeug_response(call_user_function(function.user_function, **arguments))
        except Exception:
            # Like the Functions host: the client learns nothing about the failure, the log does.
            _log.exception("function %s failed", function.name)
            return Response(status=500)


class _QuietRequestHandler(WSGIRequestHandler):
    """The WSGI app writes one structured line per request; Werkzeug's own access line would repeat it.

    Werkzeug still writes its error lines, and "Bad request syntax ('GET /api/landing?token=...')" quotes the
    whole request line, query included: every such line is redacted before it is written.
    """

    def setup(self) -> None:
        super().setup()
        # Werkzeug writes the headers, then the body: with Nagle on, the body waits for the client's delayed
        # ACK (40 ms on Linux). The Functions host answers without that stall, so the dev host must too.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return

    def log(self, type: str, message: str, *args: Any) -> None:
        # Formatted here so the redaction sees the request line; no args are passed on, so no "%" is read.
        super().log(type, redact(message % args if args else message))


def _listening_socket(host: str, port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Like the Functions host: a restart must not wait for the previous run's TIME_WAIT sockets.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(LISTEN_BACKLOG)
    except OSError:
        listener.close()
        raise
    return listener


def max_concurrent_requests() -> int:
    """host.json's `extensions.http.maxConcurrentRequests`: what the Functions host runs at once."""
    return int(host_json_setting("extensions", "http", "maxConcurrentRequests"))


class PooledWSGIServer(BaseWSGIServer):
    """Werkzeug's server on a fixed pool of threads instead of a new thread per connection.

    The accept loop takes a free slot before it accepts the next connection, so at most `workers` requests
    run and the rest wait in the listen backlog. Werkzeug closes every connection after one response, so a
    slot is never held by an idle client.
    """

    multithread = True  # tells the app (wsgi.multithread) and makes Werkzeug speak HTTP/1.1

    def __init__(self, *args: Any, workers: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workers = workers
        self._slots = threading.BoundedSemaphore(workers)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="devhost-http")

    def process_request(self, request: Any, client_address: Any) -> None:
        self._slots.acquire()
        try:
            self._pool.submit(self._handle, request, client_address)
        except RuntimeError:  # the pool is shut down: the server is stopping
            self._slots.release()
            self.shutdown_request(request)

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def server_close(self) -> None:
        super().server_close()
        # Werkzeug's __init__ closes the socket it made before taking ours: no pool exists yet then.
        pool: ThreadPoolExecutor | None = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True)  # requests already running finish; their threads end with them


class HttpHost:
    """A FunctionsWsgiApp served on a bounded thread pool, in a background thread until `stop()`.

    Raises OSError when the port is taken (Werkzeug alone would print and exit the process). `workers`
    defaults to host.json's `http.maxConcurrentRequests`.
    """

    def __init__(
        self,
        wsgi_app: FunctionsWsgiApp,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        workers: int | None = None,
    ) -> None:
        with _listening_socket(host, port) as listener:
            self._server = PooledWSGIServer(
                host,
                port,
                wsgi_app,
                handler=_QuietRequestHandler,
                fd=listener.fileno(),
                workers=workers or max_concurrent_requests(),
            )
        self._thread = threading.Thread(target=self._server.serve_forever, name="devhost-http", daemon=True)

    @property
    def workers(self) -> int:
        return self._server.workers

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._server.server_address[0]  # an AF_INET socket's address: str at run time
        return f"http://{host.decode() if isinstance(host, bytes | bytearray) else host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        started = self._thread.ident is not None
        if started:  # shutdown() waits for serve_forever: forever if it never ran
            self._server.shutdown()
        self._server.server_close()
        if started:
            self._thread.join(timeout)
