"""Webhook handler throughput on one core: full token validation (RS256, cached JWKS) and an in-memory queue.

Calls the function `function_app.py` registers, with real `azure.functions.HttpRequest` objects, from one
thread for a fixed time; signing keys come from a local OpenID server on 127.0.0.1. Logs at INFO (the
production level) by default, as JSON lines written to the null device, so formatting is counted and the
terminal is not. Two paths are measured, each for `--seconds`:
- repeated token: every request carries the same token, as Microsoft's webhook client does (it reuses its
  Entra token for up to an hour), so after the first request the handler finds it among the tokens it has
  validated (`shared.identity.token_cache`) and skips the RSA check;
- fresh token: every request carries another token, so each is validated in full. The tokens are minted
  before timing (RSA signing is the caller's cost, not the handler's), more of them than the cache holds,
  and used round-robin, so each has left the least-recently-used cache before it comes round again.
The floor is `jwt.decode` alone on one token and key: the ratio says what the handler adds to the one step
a fresh token cannot skip. Repeated, fresh and floor run in alternating slices of `SLICE_SECONDS` over the
same span of time, so a neighbour's load on this shared machine weighs on all alike; each ratio is the
median of the slices' ratios to the floor slice beside them.

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
from dataclasses import dataclass, field

import azure.functions as func
import jwt

from bench.machine import machine_line
from tests.support.oidc_server import OidcServer
from tests.support.tokens import marketplace_claims, mint

SLICE_SECONDS = 0.25
# More than twice the validated-token cache's bound: round-robin, each token has been evicted before it
# comes round again, so every fresh-token request is validated in full.
FRESH_TOKENS = 600
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


@dataclass
class Path:
    """One path's running totals over its slices."""

    name: str
    call: Callable[[], object]
    count: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0
    rates: list[float] = field(default_factory=list)

    def run_slice(self) -> None:
        done, wall, used = calls_in(self.call, SLICE_SECONDS)
        self.count, self.elapsed, self.cpu = self.count + done, self.elapsed + wall, self.cpu + used
        self.rates.append(done / wall)

    def ratio(self, floor: Path) -> float:
        return statistics.median(f / r for f, r in zip(floor.rates, self.rates, strict=True))


def webhook_call(
    handler: Callable[[func.HttpRequest], func.HttpResponse], tokens: list[str]
) -> Callable[[], None]:
    # The Functions host builds the request object, not the app: built ahead, reused round-robin.
    requests = itertools.cycle([request(token) for token in tokens])

    def one_webhook() -> None:
        response = handler(next(requests))
        assert response.status_code == 200, response.get_body()

    return one_webhook


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
        from shared.identity.token_cache import MAX_ENTRIES

        reset_services()
        handler = next(
            f.get_user_function()
            for f in registered_functions(function_app.app)
            if f.get_function_name() == "marketplace_webhook"
        )
        claims = marketplace_claims(TENANT, CLIENT, authority=server.base_url)
        token = mint(claims, server.keys[0])
        assert handler(request(token)).status_code == 200  # warm: metadata and keys fetched once
        services().queue.clear()  # type: ignore[attr-defined]
        fresh_tokens = [
            mint(marketplace_claims(TENANT, CLIENT, authority=server.base_url), server.keys[0])
            for _ in range(FRESH_TOKENS)
        ]
        assert len(set(fresh_tokens)) > 2 * MAX_ENTRIES

        repeated = Path("repeated token", webhook_call(handler, [token] * 256))
        fresh = Path("fresh token", webhook_call(handler, fresh_tokens))
        floor = Path("floor", floor_call(token, server))
        queue, queued = services().queue, 0
        while min(repeated.elapsed, fresh.elapsed) < args.seconds:
            for path in (repeated, fresh, floor):
                path.run_slice()
                # Service Bus keeps the messages, not this process: emptied after each slice (and counted),
                # so a list of thousands of messages does not make the garbage collector's work grow.
                queued += len(queue.messages)  # type: ignore[attr-defined]
                queue.clear()  # type: ignore[attr-defined]
    for path, what in (
        (repeated, "the same token on every request, validated once, then found among validated tokens"),
        (
            fresh,
            f"a fresh token on every request ({FRESH_TOKENS} minted ahead, round-robin), validated in full",
        ),
    ):
        print(
            f"webhook at {args.log_level}, {path.name}: {path.count} requests in {path.elapsed:.1f} s on one"
            f" thread = {path.count / path.elapsed:,.0f} req/s (target >= 5,000)"
        )
        print(f"  {what}")
        print(
            f"  {path.cpu / path.count * 1e6:,.0f} µs CPU per request (token validated, body checked, message"
            f" queued); ratio to the floor {path.ratio(floor):.2f} (median of {len(path.rates)} slices;"
            " target <= 2.2)"
        )
    print(f"  messages queued: {queued} of {repeated.count + fresh.count} requests")
    print(
        f"floor: jwt.decode alone, same token and key, in alternating {SLICE_SECONDS:g} s slices ="
        f" {floor.count / floor.elapsed:,.0f} /s, {floor.cpu / floor.count * 1e6:,.0f} µs CPU each"
    )
    print(machine_line())
    print(
        f"reproduce: .venv/bin/python -m bench.webhook_throughput --seconds {args.seconds:g}"
        f" --log-level {args.log_level}"
    )


if __name__ == "__main__":
    main()
