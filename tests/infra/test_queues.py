"""infra/queues.json is the one source of the queue names and properties; everything else agrees with it.

It holds what the worker relies on: sessions (one subscription's events in order, on one worker), duplicate
detection by message id (a webhook Microsoft sends twice, a refreshed landing page), a bounded number of
deliveries before Service Bus dead-letters, and dead-lettering on expiry so nothing vanishes silently.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from datetime import timedelta
from typing import Any

from devhost.local_queue import LocalQueue
from shared.config import Settings
from tests.infra.bicep import ROOT, accessor, by_name, queues

_ISO = re.compile(r"P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?")
_TIMESPAN = re.compile(r"(?P<h>\d+):(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)")


def iso_duration(text: str) -> timedelta:
    """An ISO 8601 duration as Service Bus takes it (PT1M, PT10M, P14D)."""
    match = _ISO.fullmatch(text)
    assert match, f"not an ISO 8601 duration: {text!r}"
    assert any(match.groupdict().values()), f"an empty duration: {text!r}"
    parts = {key: float(value or 0) for key, value in match.groupdict().items()}
    return timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])


def timespan(text: str) -> timedelta:
    """A .NET TimeSpan as host.json writes it (00:05:00)."""
    match = _TIMESPAN.fullmatch(text)
    assert match, f"not a TimeSpan: {text!r}"
    return timedelta(hours=int(match["h"]), minutes=int(match["m"]), seconds=float(match["s"]))


def events() -> dict[str, Any]:
    return dict(queues()["events"])


def parking() -> dict[str, Any]:
    return dict(queues()["parking"])


def host_json() -> dict[str, Any]:
    return dict(json.loads((ROOT / "host.json").read_text()))


def test_bicep_creates_both_queues_from_queues_json_unchanged() -> None:
    assert by_name("resources.bicep")["variables"]["queues"]["value"] == {
        "function": {
            "type": "load_json_content",
            "parameters": {"file_path": "queues.json", "json_path": None, "encoding": None},
        }
    }
    module = by_name("resources.bicep")["modules"]["serviceBus"]["config"]["params"]
    assert accessor(module["eventsQueue"]) == "queues.events"
    assert accessor(module["parkingQueue"]) == "queues.parking"
    declared = by_name("app/servicebus.bicep")["resources"]
    for symbol, parameter in (("events", "eventsQueue"), ("parking", "parkingQueue")):
        config = declared[symbol]["config"]
        assert accessor(config["name"]) == f"{parameter}.name"
        assert accessor(config["properties"]) == f"{parameter}.properties"


def test_the_app_defaults_name_the_same_queues() -> None:
    assert Settings().servicebus_queue == events()["name"]
    assert Settings().servicebus_deadletter_queue == parking()["name"]
    from_env = Settings.from_env({})
    assert (from_env.servicebus_queue, from_env.servicebus_deadletter_queue) == (
        events()["name"],
        parking()["name"],
    )


def test_the_example_settings_and_the_local_stack_name_the_same_queues() -> None:
    example = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    assert example["SERVICEBUS_QUEUE"] == events()["name"]
    assert example["SERVICEBUS_DEADLETTER_QUEUE"] == parking()["name"]
    dev_env = dict(
        line.split("=", 1)
        for line in (ROOT / "devhost" / "dev.env").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    for name, queue in (("SERVICEBUS_QUEUE", events()), ("SERVICEBUS_DEADLETTER_QUEUE", parking())):
        if name in dev_env:
            assert dev_env[name] == queue["name"], name


def _trigger() -> dict[str, Any]:
    tree = ast.parse((ROOT / "function_app.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "service_bus_queue_trigger":
            return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    raise AssertionError("function_app.py has no Service Bus trigger")


def test_the_worker_is_triggered_by_the_events_queue_with_sessions() -> None:
    trigger = _trigger()
    assert trigger["queue_name"] == "%SERVICEBUS_QUEUE%"
    assert trigger["is_sessions_enabled"] is True
    assert events()["properties"]["requiresSession"] is True


def test_the_events_queue_keeps_what_the_worker_relies_on() -> None:
    properties = events()["properties"]
    assert properties["requiresDuplicateDetection"] is True
    assert properties["deadLetteringOnMessageExpiration"] is True
    assert properties["maxDeliveryCount"] >= 2, "a transient failure must get another delivery"
    assert iso_duration(properties["defaultMessageTimeToLive"]) >= timedelta(days=1)


def test_the_dev_hosts_stand_in_queue_behaves_like_the_real_one() -> None:
    # Code that works under `make dev` must behave the same in Azure (devhost/local_queue.py).
    defaults = inspect.signature(LocalQueue.__init__).parameters
    properties = events()["properties"]
    assert defaults["max_delivery_count"].default == properties["maxDeliveryCount"]
    window = iso_duration(properties["duplicateDetectionHistoryTimeWindow"])
    assert defaults["duplicate_window_seconds"].default == window.total_seconds()


def test_the_host_renews_the_lock_for_a_whole_invocation() -> None:
    host = host_json()
    service_bus = host["extensions"]["serviceBus"]
    lock = iso_duration(events()["properties"]["lockDuration"])
    renewal = timespan(service_bus["maxAutoLockRenewalDuration"])
    function_timeout = timespan(host["functionTimeout"])
    # Service Bus allows at most five minutes; the host renews the (session) lock while a message runs.
    assert timedelta(seconds=30) <= lock <= timedelta(minutes=5)
    assert lock <= renewal
    # An invocation never outlasts its lock: a second worker cannot take the session mid-way.
    assert renewal >= function_timeout
    # The host completes a message when the function returns (the worker relies on raise = redeliver).
    assert service_bus["autoCompleteMessages"] is True


def test_the_parking_queue_keeps_every_parked_message_for_a_person() -> None:
    properties = parking()["properties"]
    # Operators read it with a plain receiver, whatever session id the parked message carries.
    assert properties["requiresSession"] is False
    # Parked until someone looks: no expiry (the service default, the longest there is).
    assert "defaultMessageTimeToLive" not in properties
    assert properties["deadLetteringOnMessageExpiration"] is False
    # A message parked twice (a redelivery after the park) shows once.
    assert properties["requiresDuplicateDetection"] is True


def test_queue_properties_are_ones_service_bus_knows() -> None:
    known = {
        "requiresSession",
        "requiresDuplicateDetection",
        "duplicateDetectionHistoryTimeWindow",
        "maxDeliveryCount",
        "lockDuration",
        "deadLetteringOnMessageExpiration",
        "defaultMessageTimeToLive",
        "enablePartitioning",
        "enableBatchedOperations",
        "maxSizeInMegabytes",
    }
    for queue in (events(), parking()):
        assert set(queue) == {"name", "properties"}
        assert set(queue["properties"]) <= known, sorted(set(queue["properties"]) - known)
        for name in ("lockDuration", "duplicateDetectionHistoryTimeWindow", "defaultMessageTimeToLive"):
            if name in queue["properties"]:
                iso_duration(queue["properties"][name])
