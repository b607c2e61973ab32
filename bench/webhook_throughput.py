"""Webhook handler throughput on one core: full token validation (RS256, cached JWKS) and an in-memory queue.

Calls the function `function_app.py` registers, with real `azure.functions.HttpRequest` objects, from one
thread for a fixed time; signing keys come from a local OpenID server on 127.0.0.1.

Run: .venv/bin/python -m bench.webhook_throughput [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid

import azure.functions as func

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
        LOG_LEVEL="WARNING",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with OidcServer() as server:
        configure(server)
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
    print(f"webhook: {count} requests in {elapsed:.1f} s on one thread = {count / elapsed:,.0f} req/s")
    print(f"  {cpu / count * 1e6:,.0f} µs CPU per request (token validated, body checked, message queued)")
    print(f"  messages in the in-memory queue: {queued}")
    print(f"reproduce: .venv/bin/python -m bench.webhook_throughput --seconds {args.seconds:g}")


if __name__ == "__main__":
    main()
