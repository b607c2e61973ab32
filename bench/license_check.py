"""License check throughput on one thread: hot keys (answered from the per-instance cache) and cold ones.

Calls the function `function_app.py` registers for GET /api/licenses/check with real
`azure.functions.HttpRequest` objects, against Azurite on 127.0.0.1, logging JSON lines at INFO to the null
device. Hot: the same few users over and over, as a SaaS app checks its signed-in users. Cold: the cache off
(LICENSE_CACHE_SECONDS=0), so every check reads the index. Floors, in the same run for the same time: one
bare point query of the index (cold) and building the same HTTP answer alone (hot).

Run: .venv/bin/python -m bench.license_check [--seconds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import uuid
from collections.abc import Callable

import azure.functions as func

from bench.machine import machine_line
from tests.support.azurite import running_azurite

OFFER = "bench-offer"
USERS = 20


def rate(seconds: float, step: Callable[[int], object]) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step(count)
        count += 1
    return count / (time.perf_counter() - started)


def check_request(tenant: str, user: str) -> func.HttpRequest:
    return func.HttpRequest(
        method="GET",
        url="http://127.0.0.1:7071/api/licenses/check",
        headers={},
        params={"tenantId": tenant, "objectId": user, "offerId": OFFER},
        body=b"",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with running_azurite() as connection_string:
        os.environ.update(
            QUEUE_BACKEND="memory",
            STORAGE_CONNECTION_STRING=connection_string,
            TABLE_SEATS=f"b{uuid.uuid4().hex[:8]}seats",
            LOG_LEVEL="INFO",
        )
        import function_app
        from devhost import registered_functions
        from shared.app_context import reset_services, services
        from shared.domain.identity import Person
        from shared.domain.status import SubscriptionStatus
        from shared.domain.subscription import Party, Subscription
        from shared.entrypoints.http import json_response
        from shared.logs import configure

        configure("INFO")
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
        handle = next(
            f.get_user_function()
            for f in registered_functions(function_app.app)
            if f.get_function_name() == "license_check"
        )
        tenant = str(uuid.uuid4())
        users = [str(uuid.uuid4()) for _ in range(USERS)]
        subscription = Subscription(
            id=str(uuid.uuid4()),
            offer_id=OFFER,
            plan_id="p",
            quantity=USERS,
            status=SubscriptionStatus.SUBSCRIBED,
            beneficiary=Party(tenant_id=tenant),
        )
        reset_services()
        services().licenses.refresh(subscription, [Person.of(tenant, user) for user in users])
        requests = [check_request(tenant, user) for user in users]

        def check(i: int) -> None:
            response = handle(requests[i % USERS])
            assert response.status_code == 200, response.get_body()
            assert b'"allowed": true' in response.get_body(), response.get_body()

        hot = rate(args.seconds, check)
        answer_floor = rate(args.seconds, lambda i: json_response({"allowed": True}, headers={}))
        os.environ["LICENSE_CACHE_SECONDS"] = "0"
        reset_services()
        cold = rate(args.seconds, check)
        index = services().licenses
        read_floor = rate(args.seconds, lambda i: index.lookup(tenant, users[i % USERS], OFFER))
    print(
        f"license check, hot ({USERS} users, cache 10 s): {hot:,.0f} checks/s on one thread (target >= 5,000)"
    )
    print(f"  floor: the HTTP answer alone = {answer_floor:,.0f} /s")
    print(f"license check, cold (cache off, one index read each): {cold:,.0f} checks/s")
    print(f"  floor: one bare index query to Azurite = {read_floor:,.0f} /s")
    print(machine_line())
    print(f"reproduce: .venv/bin/python -m bench.license_check --seconds {args.seconds:g}")


if __name__ == "__main__":
    main()
