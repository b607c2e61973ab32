"""The CLI's tables show buyer-controlled text as typed: never as rich markup."""

from __future__ import annotations

import pytest

from ops.render import print_table


@pytest.mark.parametrize(
    "hostile",
    ["x [/] y", "[link=https://evil.example]click[/link]", "[bold red]urgent[/]", "[[escaped]]"],
)
def test_a_cell_is_printed_as_typed(
    hostile: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one line per cell, whatever the caller's terminal

    print_table("subscriptions", ["name"], [[hostile]])

    assert hostile in capsys.readouterr().out
