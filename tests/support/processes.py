"""A process's children by the module they run, read from /proc (Linux): for tests and benchmarks that look
at the local stack's processes from outside."""

from __future__ import annotations

from pathlib import Path


def children_running(parent: int, module: str) -> list[int]:
    """The pids of `parent`'s children started as `python -m <module>` (or whose command line names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended between the listing and the read
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        named = any(part == module.encode() or part.endswith(b"/" + module.encode()) for part in command)
        if ppid == parent and named:
            found.append(int(entry.name))
    return sorted(found)
