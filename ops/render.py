"""How the CLI prints: rich tables and progress bars for a person, JSON for a script (`--json`).

Tables and progress go to the terminal only; with `--json` stdout holds exactly one JSON document and
nothing else, so `python -m ops ... --json | jq` always parses.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

T = TypeVar("T")

# Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts cursor moves, erasing,
# hidden OSC 8 hyperlinks; rich's Text strips only a few of them) and the bidi overrides that reorder what
# is shown. Buyer-controlled text (subscription names, dead-letter bodies) is printed with these spelled out.
_ACTS_ON_TERMINAL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# Output piped to a file or another program is not folded at 80 columns: the tables stay greppable.
PIPE_WIDTH = 200


def _console() -> Console:
    # Built per use: it reads the terminal's width (or COLUMNS) and the current sys.stdout each time.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or PIPE_WIDTH)
    return Console(highlight=False, width=width)


def _errors() -> Console:
    return Console(stderr=True, highlight=False)


def plain(value: Any) -> Any:
    """`value` as JSON types: dataclasses as objects, datetimes as ISO 8601, enums by value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "etag"}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(plain(value), indent=2, ensure_ascii=False) + "\n")


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        # Cells hold buyer-controlled text (subscription names, addresses, dead-letter bodies): as Text they
        # are shown as typed, never read as rich markup ("[link=...]" would be a hyperlink, "[/]" an error).
        table.add_row(*(Text(text(cell)) for cell in row))
    _console().print(table)


def print_line(message: str) -> None:
    _console().print(visible(message), markup=False)


def print_error(message: str) -> None:
    _errors().print(f"error: {visible(message)}", markup=False)


def text(value: Any) -> str:
    """A cell as a person reads it: times in UTC, enums by value, terminal controls spelled out."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}Z" if value.utcoffset() is not None else value.isoformat()
    if isinstance(value, enum.Enum):
        return visible(str(value.value))
    return visible(str(value))


def visible(value: str) -> str:
    """`value` with every character a terminal would act on written as its escape (`\\x1b`, `\\u202e`)."""
    return _ACTS_ON_TERMINAL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), value)


def short(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def with_progress(items: Sequence[T], description: str, *, shown: bool) -> Iterator[T]:
    """Yields `items`, advancing a progress bar on stderr while `shown` and stderr is a terminal."""
    errors = _errors()
    if not shown or not errors.is_terminal:
        yield from items
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=False) as progress:
        task = progress.add_task(description, total=len(items))
        for item in items:
            yield item
            progress.advance(task)
