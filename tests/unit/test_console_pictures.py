"""The console's SVG charts and CSV cells: no script, no style, every label escaped, no formula."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pytest

from shared.web.charts import bars_per_day, horizontal_bars
from shared.web.csv_export import csv_lines, safe_cell

HOSTILE = '<script>alert(1)</script>" onload="x'


@pytest.mark.parametrize(
    "svg",
    [
        horizontal_bars(HOSTILE, [(HOSTILE, 3), ("plain", 0)]),
        bars_per_day(HOSTILE, [(HOSTILE, 2.5), ("Dec 01", None), ("Dec 02", 0)], unit=" s"),
        horizontal_bars("empty", []),
        bars_per_day("empty", []),
    ],
)
def test_charts_are_accessible_pictures_without_script_or_style(svg: str) -> None:
    root = ET.fromstring(str(svg))  # noqa: S314 - our own output; well-formed: nothing a label held broke out of its element
    assert root.get("role") == "img"
    assert root.get("aria-label")
    assert root.find("{http://www.w3.org/2000/svg}title") is not None
    names = {element.tag.split("}")[-1] for element in root.iter()}
    assert "script" not in names
    assert "foreignObject" not in names
    for element in root.iter():
        assert "style" not in element.attrib
        assert not any(name.startswith("on") for name in element.attrib)
    assert "<script" not in str(svg)


def test_chart_labels_are_escaped_and_kept_as_text() -> None:
    svg = str(horizontal_bars("Plans", [(HOSTILE, 1)]))
    assert "&lt;script&gt;" in svg
    texts = [element.text or "" for element in ET.fromstring(svg).iter()]  # noqa: S314
    assert any("<script>" in text for text in texts), "the label reads back as the text it was"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Contoso = fine", "Contoso = fine"),
        (" =HYPERLINK(1)", "' =HYPERLINK(1)"),
        ("\u00a0=1", "'\u00a0=1"),
        ("\uff1dHYPERLINK(1)", "'\uff1dHYPERLINK(1)"),
        ("\uff0b1", "'\uff0b1"),
        (None, ""),
        (5, "5"),
    ],
)
def test_cells_that_a_spreadsheet_would_run_get_an_apostrophe(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_csv_lines_read_back_as_written() -> None:
    text = "".join(csv_lines(("id", "name"), [("a", 'x,"y"\nz'), ("b", "=1+1")]))
    assert text.startswith("\ufeff")  # spreadsheets then read names in any script as UTF-8
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows == [["id", "name"], ["a", 'x,"y"\nz'], ["b", "'=1+1"]]


def test_a_semicolon_separated_reading_finds_no_cell_that_starts_a_formula() -> None:
    # Excel in de-DE or fr-FR splits on ";": quoting keeps "a;=cmd..." one cell there too.
    text = "".join(csv_lines(("name",), [("a;=cmd|' /C calc'!A0;b",)])).removeprefix("\ufeff")
    for row in csv.reader(io.StringIO(text), delimiter=";"):
        assert not any(cell.lstrip().startswith("=") for cell in row), row


def test_fractions_of_a_second_read_as_two_decimals_not_six() -> None:
    picture = str(bars_per_day("Latency", [("Dec 01", 0.041369)], unit=" s"))
    assert "0.04 s" in picture
    assert "0.041369" not in picture


def test_a_label_with_a_right_to_left_override_cannot_reorder_its_count() -> None:
    picture = str(horizontal_bars("By offer", [("\u202eevil", 12.0)]))
    assert "<title>\u2068\u202eevil\u2069: 12</title>" in picture
