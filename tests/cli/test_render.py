"""The CLI's tables show buyer-controlled text as typed: never as rich markup."""

from __future__ import annotations

import pytest

from ops.render import print_line, print_table


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


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("Benign\x1b[2K\x1b[1A hidden", "Benign\\x1b[2K\\x1b[1A hidden"),
        ("\x1b]8;;https://evil.example/\x1b\\Click me\x1b]8;;\x1b\\", "\\x1b]8;;https://evil.example/"),
        ("invoice\u202egpj.exe", "invoice\\u202egpj.exe"),
        ("bell\x07 and \x9b csi", "bell\\x07 and \\x9b csi"),
    ],
    ids=["cursor-and-erase", "osc8-hyperlink", "bidi-override", "bel-and-c1"],
)
def test_terminal_controls_in_a_cell_or_line_are_spelled_out(
    hostile: str, shown: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")

    print_table("subscriptions", ["name"], [[hostile]])
    print_line(f"reconcile queued for {hostile}")

    out = capsys.readouterr().out
    assert out.count(shown) == 2
    assert not any(char in out for char in "\x1b\x07\x9b\u202e")
