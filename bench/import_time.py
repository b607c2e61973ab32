"""Cold-start cost: how long `import function_app` takes in a fresh interpreter, next to `azure.functions`.

`function_app` imports no entry module (`shared.entrypoints.binding`), so the webhook's first call pays for
its own: the entry module and the adapter modules the composition root builds for it (token validation and
the queue). That figure is measured too, after `import function_app`, with the heavy packages it loaded:
Jinja2 (pages) and MSAL (sign-in) must not be among them.

Run: .venv/bin/python -m bench.import_time [--runs 15]
"""

from __future__ import annotations

import argparse
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


def _run(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()


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
    print(machine_line())
    print("reproduce: .venv/bin/python -m bench.import_time --runs", args.runs)


if __name__ == "__main__":
    main()
