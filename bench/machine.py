"""What every benchmark prints beside its figures: the machine's load and cores, and how to run it again.

The figures are only comparable with a floor measured in the same run on the same (often shared) machine,
so each benchmark prints its floor next to them, and this line says how busy the machine was meanwhile.
"""

from __future__ import annotations

import os


def machine_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"machine: load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"
