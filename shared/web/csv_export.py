"""CSV for spreadsheets, safe to open: no cell is read as a formula.

A spreadsheet runs a cell that starts with = + - @ (and, in some, a tab or carriage return) as a formula,
so a subscription named `=HYPERLINK(...)` would act when an operator opens the export (OWASP "CSV
injection"). Such a cell gets a leading apostrophe, which spreadsheets show as text and hide.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The header line then one line per row (CRLF-terminated, RFC 4180), every cell made safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(cell) for cell in header])
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([safe_cell(cell) for cell in row])
        yield buffer.getvalue()
