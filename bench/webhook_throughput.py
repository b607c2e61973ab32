"""Webhook handler throughput on one core: full token validation (RS256, cached JWKS) and an in-memory queue.

Calls the function `function_app.py` registers, with real `azure.functions.HttpRequest` objects, from one
thread for a fixed time; signing keys come from a local OpenID server on 127.0.0.1. Logs at INFO (the
production level) by default, as JSON lines written to the null device, so formatting is counted and the
terminal is not. The floor, measured in the same run for the same time, is `jwt.decode` alone on the same
token and key: the ratio says what the handler adds to the one step it cannot skip.

Run: .venv/bin/python -m bench.webhook_throughput [--seconds 5] [--log-level INFO]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid

import azure.functions as func
import jwt

from bench.machine import machine_line
from tests.support.oidc_server import OidcServer
from tests.support.tokens import marketplace_claims, mint

TENANT = str(uuid.uuid4())
CLIENT = str(uuid.uuid4())


def configure(server: OidcServer) -> None:
    os.environ.update(
        QUEUE_BACKEND="memory",
        PUBLISHER_TENANT_ID=TENANT,
        PUBLISHER_CLIENT_ID=CLIENT,
        WEBHOOK_OPENID_CONFIG_URL=server.metadata_url(TENANT),
        STORAGE_CONNECTION_STRING="UseDevelopmentStorage=true",
    )


def request(token: str) -> func.HttpRequest:
    body = {
        "id": str(uuid.uuid4()),
        "subscriptionId": str(uuid.uuid4()),
        "action": "Suspend",
        "status": "Succeeded",
    }
    return func.HttpRequest(
        method="POST",
        url="http://127.0.0.1:7071/api/webhook",
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        body=json.dumps(body).encode(),
    )


def decode_alone(token: str, server: OidcServer, seconds: float) -> float:
    """Requests/s of `jwt.decode` with the same key, audience and checks: the floor of the handler."""
    key = server.keys[0].private_key.public_key()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        jwt.decode(token, key, algorithms=["RS256"], audience=CLIENT, options={"verify_iss": False})
        count += 1
    return count / (time.perf_counter() - started)


def quiet_json_logs() -> None:
    """Keeps the JSON handler and formatter the app installs, but writes to the null device."""
    import logging

    from shared.logs import configure as configure_logs

    configure_logs(os.environ["LOG_LEVEL"])
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    with OidcServer() as server:
        configure(server)
        os.environ["LOG_LEVEL"] = args.log_level
        quiet_json_logs()
        import function_app
        from devhost import registered_functions
        from shared.app_context import reset_services, services

        reset_services()
        handler = next(
            f.get_user_function()
            for f in registered_functions(function_app.app)
            if f.get_function_name() == "marketplace_webhook"
        )
        token = mint(marketplace_claims(TENANT, CLIENT, authority=server.base_url), server.keys[0])
        assert handler(request(token)).status_code == 200  # warm: metadata and keys fetched once
        count, started = 0, time.perf_counter()
        cpu_started = time.process_time()
        while time.perf_counter() - started < args.seconds:
            response = handler(request(token))
            assert response.status_code == 200, response.get_body()
            count += 1
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        queued = len(services().queue.messages)  # type: ignore[attr-defined]
        floor = decode_alone(token, server, args.seconds)
    rate = count / elapsed
    print(
        f"webhook at {args.log_level}: {count} requests in {elapsed:.1f} s on one thread = {rate:,.0f} req/s"
        " (target >= 5,000)"
    )
    print(f"  {cpu / count * 1e6:,.0f} µs CPU per request (token validated, body checked, message queued)")
    print(f"  messages in the in-memory queue: {queued}")
    print(
        f"floor: jwt.decode alone, same token and key = {floor:,.0f} /s;"
        f" ratio {floor / rate:.2f} (target <= 2.2)"
    )
    print(machine_line())
    print(
        f"reproduce: .venv/bin/python -m bench.webhook_throughput --seconds {args.seconds:g}"
        f" --log-level {args.log_level}"
    )


if __name__ == "__main__":
    main()
