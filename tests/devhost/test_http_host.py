"""The dev host serves a FunctionApp's HTTP triggers over a real socket, as the Functions host would."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import azure.functions as func
import pytest
import requests

from devhost.http_host import FunctionsWsgiApp, HttpHost, http_functions

KEY = "test-function-key"

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="echo", methods=["GET", "POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(
            {
                "method": req.method,
                "url": req.url,
                "params": dict(req.params),
                "route_params": dict(req.route_params),
                "body": req.get_body().decode(),
                "custom_header": req.headers.get("x-custom"),
            }
        ),
        mimetype="application/json",
    )


@app.route(route="portal/{subscription_id}/users/{name:alpha}", methods=["GET"])
def portal_user(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"{req.route_params['subscription_id']}/{req.route_params['name']}")


@app.route(route="files/{*rest}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params.get("rest", "<none>"))


@app.route(route="admin/report", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def report(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("secret report")


@app.route(route="login", methods=["POST"])
def login(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse("", status_code=302, headers={"Location": "/api/home"})
    response.headers.add("Set-Cookie", "session=abc; Path=/; HttpOnly")
    response.headers.add("Set-Cookie", "csrf=xyz; Path=/; SameSite=Lax")
    return response


@app.route(route="page", methods=["GET"])
def page(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("<p>héllo</p>", mimetype="text/html", charset="utf-8", status_code=201)


@app.route(route="plain", methods=["GET"])
def plain(req: func.HttpRequest) -> str:
    return "just text"


@app.route(route="broken", methods=["GET"])
def broken(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("database password is hunter2")


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    host = HttpHost(FunctionsWsgiApp(app, function_key=KEY), port=0)
    host.start()
    try:
        yield f"{host.url}/api"
    finally:
        host.stop()


def get(url: str, **kwargs: object) -> requests.Response:
    return requests.get(url, timeout=10, allow_redirects=False, **kwargs)  # type: ignore[arg-type]


def test_routes_come_from_the_registrations() -> None:
    by_name = {f.name: f for f in http_functions(app)}
    assert by_name["report"].auth_level == func.AuthLevel.FUNCTION
    assert by_name["echo"].methods == ("GET", "POST")
    assert by_name["portal_user"].route == "portal/{subscription_id}/users/{name:alpha}"


def test_query_params_headers_and_url_reach_the_function(base_url: str) -> None:
    response = get(f"{base_url}/echo?a=1&b=two", headers={"X-Custom": "yes"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    seen = response.json()
    assert seen["method"] == "GET"
    assert seen["params"] == {"a": "1", "b": "two"}
    assert seen["custom_header"] == "yes"
    assert seen["url"] == f"{base_url}/echo?a=1&b=two"


def test_the_body_of_a_post_reaches_the_function(base_url: str) -> None:
    response = requests.post(f"{base_url}/echo", data=b'{"x": 1}', timeout=10)
    assert response.status_code == 200
    assert response.json()["method"] == "POST"
    assert response.json()["body"] == '{"x": 1}'


def test_route_parameters_and_constraints(base_url: str) -> None:
    assert get(f"{base_url}/portal/sub-42/users/alice").text == "sub-42/alice"
    assert get(f"{base_url}/portal/sub-42/users/al1ce").status_code == 404, "alpha refuses digits"


def test_a_catch_all_takes_the_rest_of_the_path_or_nothing(base_url: str) -> None:
    assert get(f"{base_url}/files/a/b/c.txt").text == "a/b/c.txt"
    assert get(f"{base_url}/files").text == "<none>"


def test_a_function_level_route_needs_the_key(base_url: str) -> None:
    assert get(f"{base_url}/admin/report").status_code == 401
    assert get(f"{base_url}/admin/report", params={"code": "wrong"}).status_code == 401
    assert get(f"{base_url}/admin/report", params={"code": KEY}).text == "secret report"
    assert get(f"{base_url}/admin/report", headers={"x-functions-key": KEY}).status_code == 200


def test_without_a_configured_key_a_function_level_route_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVHOST_FUNCTION_KEY", raising=False)
    host = HttpHost(FunctionsWsgiApp(app), port=0)
    host.start()
    try:
        assert get(f"{host.url}/api/admin/report", params={"code": ""}).status_code == 401
        assert get(f"{host.url}/api/plain").status_code == 200
    finally:
        host.stop()


def test_the_key_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVHOST_FUNCTION_KEY", "from-env")
    host = HttpHost(FunctionsWsgiApp(app), port=0)
    host.start()
    try:
        assert get(f"{host.url}/api/admin/report", params={"code": "from-env"}).status_code == 200
    finally:
        host.stop()


def test_unknown_routes_are_404_and_wrong_methods_405(base_url: str) -> None:
    assert get(f"{base_url}/nowhere").status_code == 404
    assert get(base_url.removesuffix("/api") + "/echo").status_code == 404, "routes live under /api"
    wrong = requests.delete(f"{base_url}/echo", timeout=10)
    assert wrong.status_code == 405
    assert {"GET", "POST"} <= set(wrong.headers["Allow"].replace(" ", "").split(","))
    assert get(f"{base_url}/login").status_code == 405


def test_every_set_cookie_header_is_kept(base_url: str) -> None:
    response = requests.post(f"{base_url}/login", timeout=10, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == "/api/home"
    cookies = response.raw.headers.getlist("Set-Cookie")
    assert cookies == ["session=abc; Path=/; HttpOnly", "csrf=xyz; Path=/; SameSite=Lax"]


def test_status_mimetype_and_charset_become_the_response(base_url: str) -> None:
    response = get(f"{base_url}/page")
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.content == "<p>héllo</p>".encode()


def test_a_returned_string_is_a_plain_200(base_url: str) -> None:
    response = get(f"{base_url}/plain")
    assert (response.status_code, response.text) == (200, "just text")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_an_exception_is_a_bare_500_and_a_log_line(base_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("ERROR", logger="devhost.http_host"):
        response = get(f"{base_url}/broken")
    assert response.status_code == 500
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert any("broken failed" in record.getMessage() for record in caplog.records)


def test_requests_are_served_concurrently(base_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda n: get(f"{base_url}/echo?n={n}").status_code, range(32)))
    assert statuses == [200] * 32


@pytest.mark.parametrize(
    "target",
    [
        "/api/portal//setup/PATHSECRET",
        "/api/portal/%2Fsetup/PATHSECRET",
        "/api/portal%2Fsetup%2FPATHSECRET",
        "/api/portal/setup/%252FPATHSECRET",
        "/api/portal/./setup//PATHSECRET",
        "/api/landing?tok%65n=PATHSECRET",
    ],
)
def test_the_request_log_never_holds_a_disguised_setup_code(
    base_url: str, target: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Sent as raw bytes, so no client tidies the path: the request log sees what an attacker typed."""
    host, port = base_url.removeprefix("http://").removesuffix("/api").rsplit(":", 1)
    with caplog.at_level("DEBUG"):
        for line in (f"GET {target} HTTP/1.1", f"GET {target} extra HTTP/1.1"):  # the second is a 400
            with socket.create_connection((host, int(port)), timeout=10) as raw:
                raw.sendall(f"{line}\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                while raw.recv(4096):
                    pass
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET " in text, "the request log was not captured: the test would prove nothing"
    assert "Bad request syntax" in text
    assert "[redacted]" in text
    assert "PATHSECRET" not in text


def test_the_pool_size_is_host_json_max_concurrent_requests() -> None:
    from devhost import PROJECT_ROOT

    limit = json.loads((PROJECT_ROOT / "host.json").read_text())["extensions"]["http"][
        "maxConcurrentRequests"
    ]
    host = HttpHost(FunctionsWsgiApp(app, function_key=KEY), port=0)
    try:
        assert host.workers == limit
    finally:
        host.stop()


def test_at_most_workers_requests_run_at_once_and_the_rest_wait_their_turn() -> None:
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    slow_app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    lock = threading.Lock()
    running: list[int] = [0, 0]  # now, peak

    @slow_app.route(route="slow", methods=["GET"])
    def slow(req: func.HttpRequest) -> func.HttpResponse:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1
        return func.HttpResponse("ok")

    host = HttpHost(FunctionsWsgiApp(slow_app), port=0, workers=3)
    host.start()
    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(lambda n: get(f"{host.url}/api/slow").status_code, range(24)))
    finally:
        host.stop()
    assert statuses == [200] * 24, "requests beyond the pool wait; none is refused"
    assert running[1] == 3


def test_thousands_of_requests_add_no_threads(base_url: str) -> None:
    # A thread per request once meant a thread, a queue connection and its files per webhook.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    def burst(count: int) -> None:
        with ThreadPoolExecutor(max_workers=16) as pool:
            assert set(pool.map(lambda n: get(f"{base_url}/echo?n={n}").status_code, range(count))) == {200}

    burst(200)
    served_by = {t.name for t in threading.enumerate() if t.name.startswith("devhost-http_")}
    burst(1000)
    now = {t.name for t in threading.enumerate() if t.name.startswith("devhost-http_")}
    assert len(now) <= 100
    assert len(now - served_by) <= 16, "the pool's threads serve again; no thread per request"


def test_answers_are_not_held_back_by_nagle() -> None:
    from devhost.http_host import _QuietRequestHandler
    from tests.support.nodelay import served_with_nodelay

    assert served_with_nodelay(_QuietRequestHandler)
