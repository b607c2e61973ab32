"""Where the queue keeps no dead letters an operator can reach (the in-memory queue), the page says so."""

from __future__ import annotations

from tests.console import CONSOLE, OLIVIA
from tests.portal import Portal, token_for


def test_the_page_says_there_is_nothing_to_read_and_actions_change_nothing(portal: Portal) -> None:
    admin = portal.browser(OLIVIA)

    page = admin.get(f"{portal.url}{CONSOLE}/dead-letters", allow_redirects=False)
    posted = admin.post(
        f"{portal.url}{CONSOLE}/dead-letters/replay",
        data={"csrf_token": token_for(admin), "scope": "filter", "confirm": "yes"},
        allow_redirects=False,
    )

    assert page.status_code == 200
    assert "keeps no dead letters the console can read" in page.text
    assert "data-bulk" not in page.text
    assert posted.status_code == 200
    assert "keeps no dead letters the console can read" in posted.text
