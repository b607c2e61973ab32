"""Webhook handler throughput on one core: full token validation (RS256, cached JWKS) and an in-memory queue.

Calls the function `function_app.py` registers, with real `azure.functions.HttpRequest` objects, from one
thread for a fixed time; signing keys come from a local OpenID server on 127.0.0.1. Logs at INFO (the
production level) by default, as JSON lines written to the null device, so formatting is counted and the
terminal is not. The floor is `jwt.decode` alone on the same token and key: the ratio says what the handler
adds to the one step it cannot skip. Handler and floor run in alternating slices of `SLICE_SECONDS` over the
same span of time, so a neighbour's load on this shared machine weighs on both alike; the ratio is the median
of the slices' ratios.

Run: .venv/bin/python -m bench.webhook_throughput [--seconds 5] [--log-level INFO]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable

import azure.functions as func
import jwt

from bench.machine import machine_line
from tests.support.oidc_server import OidcServer
from tests.support.tokens import marketplace_claims, mint

SLICE_SECONDS = 0.25
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


def floor_call(token: str, server: OidcServer) -> Callable[[], object]:
    """`jwt.decode` with the same key, audience and checks as the handler: the floor of the handler."""
    key = server.keys[0].private_key.public_key()
    return lambda: jwt.decode(
        token, key, algorithms=["RS256"], audience=CLIENT, options={"verify_iss": False}
    )


def calls_in(call: Callable[[], object], seconds: float) -> tuple[int, float, float]:
    """(calls, wall seconds, CPU seconds) of calling `call` back to back for about `seconds`."""
    count, started, cpu_started = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        call()
        count += 1
    return count, time.perf_counter() - started, time.process_time() - cpu_started


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

        # The Functions host builds the request object, not the app: built ahead, reused round-robin.
        requests = itertools.cycle([request(token) for _ in range(256)])

        def one_webhook() -> None:
            response = handler(next(requests))
            assert response.status_code == 200, response.get_body()

        floor = floor_call(token, server)
        queue = services().queue
        queued, count, elapsed, cpu, ratios = 0, 0, 0.0, 0.0, []
        floor_count, floor_elapsed = 0, 0.0
        while elapsed < args.seconds:
            done, wall, used = calls_in(one_webhook, SLICE_SECONDS)
            floor_done, floor_wall, _ = calls_in(floor, SLICE_SECONDS)
            count, elapsed, cpu = count + done, elapsed + wall, cpu + used
            # Service Bus keeps the messages, not this process: emptied after each slice (and counted), so
            # a list of thousands of messages does not make the garbage collector's work grow with the run.
            queued += len(queue.messages)  # type: ignore[attr-defined]
            queue.clear()  # type: ignore[attr-defined]
            floor_count, floor_elapsed = floor_count + floor_done, floor_elapsed + floor_wall
            ratios.append((floor_done / floor_wall) / (done / wall))
    rate = count / elapsed
    print(
        f"webhook at {args.log_level}: {count} requests in {elapsed:.1f} s on one thread = {rate:,.0f} req/s"
        " (target >= 5,000)"
    )
    print(f"  {cpu / count * 1e6:,.0f} µs CPU per request (token validated, body checked, message queued)")
    print(f"  messages queued: {queued}")
    print(
        f"floor: jwt.decode alone, same token and key, in alternating {SLICE_SECONDS:g} s slices ="
        f" {floor_count / floor_elapsed:,.0f} /s; ratio {statistics.median(ratios):.2f} (median of"
        f" {len(ratios)} slices; target <= 2.2)"
    )
    print(machine_line())
    print(
        f"reproduce: .venv/bin/python -m bench.webhook_throughput --seconds {args.seconds:g}"
        f" --log-level {args.log_level}"
    )


if __name__ == "__main__":
    main()
