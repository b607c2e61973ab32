"""Cold-start cost: how long `import function_app` takes in a fresh interpreter, next to `azure.functions`.

`function_app` imports no entry module (`shared.entrypoints.binding`), so the webhook's first call pays for
its own: the entry module and the adapter modules the composition root builds for it (token validation and
the queue). That figure is measured too, after `import function_app`, with the heavy packages it loaded:
Jinja2 (pages) and MSAL (sign-in) must not be among them.

With `--telemetry`, the webhook's first call is measured twice more, with telemetry off and on: its imports
and the composition root (`services()`), which with `APPLICATIONINSIGHTS_CONNECTION_STRING` set imports and
configures the Azure Monitor distro. The connection string is a dummy whose endpoints are a closed port on
127.0.0.1, and statsbeat, the control plane and the cloud resource detectors are off, so nothing waits on the
network: the exporters send in background threads, after the figure is taken.

Run: .venv/bin/python -m bench.import_time [--runs 15] [--telemetry]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.machine import machine_line

ROOT = Path(__file__).resolve().parents[1]
PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
# What the webhook's first call imports: its entry module, then what `services()` builds for it.
WEBHOOK_MODULES = (
    "shared.entrypoints.webhook",
    "shared.identity.token_policies",
    "shared.identity.tokens",
    "shared.identity.signing_keys",
    "shared.queueing.backends",
)
HEAVY = ("jinja2", "msal", "azure.identity", "requests", "azure.data.tables", "azure.servicebus", "jwt")
WEBHOOK_PROBE = (
    "import importlib, sys, time; import function_app; t = time.perf_counter()\n"
    f"for name in {WEBHOOK_MODULES!r}: importlib.import_module(name)\n"
    f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    "print(time.perf_counter() - t)"
)


# The webhook's first call including the composition root, which configures telemetry when it is on.
FIRST_CALL_PROBE = (
    "import importlib, time; import function_app; t = time.perf_counter()\n"
    f"for name in {WEBHOOK_MODULES!r}: importlib.import_module(name)\n"
    "from shared.app_context import services; services()\n"
    "print(time.perf_counter() - t)"
)
CLOSED = "https://127.0.0.1:9/"
DUMMY_CONNECTION_STRING = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
    f"IngestionEndpoint={CLOSED};LiveEndpoint={CLOSED}"
)
# No Azure needed: the in-memory queue, Azurite's well-known connection string (no request is made).
FIRST_CALL_ENV = {
    "QUEUE_BACKEND": "memory",
    "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
    "LOG_LEVEL": "WARNING",
}
TELEMETRY_ENV = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": DUMMY_CONNECTION_STRING,
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
}


def _run(code: str, env: dict[str, str] | None = None) -> list[str]:
    environment = None
    if env is not None:
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("APPLICATIONINSIGHTS_", "OTEL_"))
        }
        environment.update(env)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    return out.stdout.strip().splitlines()


def first_call_seconds(runs: int, *, telemetry: bool) -> list[float]:
    """Seconds the webhook's first call spends on imports and the composition root, telemetry off or on."""
    env = {**FIRST_CALL_ENV, **(TELEMETRY_ENV if telemetry else {})}
    return [float(_run(FIRST_CALL_PROBE, env)[-1]) for _ in range(runs)]


def import_seconds(module: str, runs: int) -> list[float]:
    return [float(_run(PROBE.format(module=module))[-1]) for _ in range(runs)]


def webhook_first_call(runs: int) -> tuple[list[float], str]:
    """Seconds the webhook's first call spends importing, and the heavy packages loaded by then."""
    samples, loaded = [], ""
    for _ in range(runs):
        *rest, seconds = _run(WEBHOOK_PROBE)
        samples.append(float(seconds))
        loaded = rest[-1] if rest else ""
    return samples, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--telemetry", action="store_true", help="also the webhook's first call with telemetry off and on"
    )
    args = parser.parse_args()
    print(f"import time, median of {args.runs} fresh interpreters (Python {sys.version.split()[0]})")
    medians = {}
    for module in ("azure.functions", "function_app"):
        samples = import_seconds(module, args.runs)
        medians[module] = statistics.median(samples)
        median_ms, min_ms = medians[module] * 1000, min(samples) * 1000
        print(f"  {module:<16} median {median_ms:7.1f} ms   min {min_ms:7.1f} ms")
    ratio = medians["function_app"] / medians["azure.functions"]
    print(f"  ratio function_app / azure.functions: {ratio:.2f} (budget 1.4)")
    samples, loaded = webhook_first_call(args.runs)
    median_ms, min_ms = statistics.median(samples) * 1000, min(samples) * 1000
    print(f"  webhook first call (imports)   median {median_ms:7.1f} ms   min {min_ms:7.1f} ms")
    print(f"    heavy packages loaded by then: {loaded or 'none'}")
    if args.telemetry:
        off = statistics.median(first_call_seconds(args.runs, telemetry=False)) * 1000
        on = statistics.median(first_call_seconds(args.runs, telemetry=True)) * 1000
        print(f"  webhook first call (imports + services()), telemetry off   median {off:7.1f} ms")
        print(f"  webhook first call (imports + services()), telemetry on    median {on:7.1f} ms")
        added = on - off
        print(f"    telemetry adds {added:.1f} ms (distro imported and configured, dummy connection string)")
    print(machine_line())
    print(
        "reproduce: .venv/bin/python -m bench.import_time --runs", args.runs, "--telemetry" * args.telemetry
    )


if __name__ == "__main__":
    main()
