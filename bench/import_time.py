"""Cold-start cost: how long `import function_app` takes in a fresh interpreter, next to `azure.functions`.

Run: .venv/bin/python -m bench.import_time [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def import_seconds(module: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(f"import time, median of {args.runs} fresh interpreters (Python {sys.version.split()[0]})")
    for module in ("azure.functions", "function_app"):
        samples = import_seconds(module, args.runs)
        median_ms, min_ms = statistics.median(samples) * 1000, min(samples) * 1000
        print(f"  {module:<16} median {median_ms:7.1f} ms   min {min_ms:7.1f} ms")
    print("reproduce: .venv/bin/python -m bench.import_time --runs", args.runs)


if __name__ == "__main__":
    main()
