"""CSV for spreadsheets, safe to open: no cell is read as a formula.

A spreadsheet runs a cell that starts with = + - @ (and, in some, a tab or carriage return) as a formula,
so a subscription named `=HYPERLINK(...)` would act when an operator opens the export (OWASP "CSV
injection"). Such a cell gets a leading apostrophe, which spreadsheets show as text and hide. The check
looks past leading spaces and at the NFKC form (a full-width equals sign is an = to some), and every
cell is quoted: in locales whose list separator is ";", an unquoted `a;=cmd...` would split into a new
cell that starts with "=". The file starts with a UTF-8 byte-order mark so spreadsheets read names in any
script correctly.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Iterator, Sequence

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BYTE_ORDER_MARK = "\ufeff"


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    seen = unicodedata.normalize("NFKC", text).lstrip(" \u00a0\u3000\n\v\f")
    return "'" + text if seen.startswith(_FORMULA_STARTS) else text


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The byte-order mark and header line, then one line per row (CRLF-terminated, RFC 4180, every cell
    quoted and made safe)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow([safe_cell(cell) for cell in header])
    yield BYTE_ORDER_MARK + buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([safe_cell(cell) for cell in row])
        yield buffer.getvalue()
