"""Where the queue keeps no dead letters an operator can reach (the in-memory queue), or cannot be opened,
the page says so and nothing is touched."""

from __future__ import annotations

import uuid
from pathlib import Path

from devhost.local_queue import register_local_queue
from tests.console import CONSOLE, OLIVIA
from tests.portal import Portal, running_portal, token_for


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


def test_a_queue_that_cannot_be_opened_is_reported_on_the_page(
    azurite_connection_string: str, tmp_path: Path
) -> None:
    register_local_queue()
    # A directory where the queue's file should be: SQLite cannot open it, as a broken mount would.
    env = {"QUEUE_BACKEND": "local", "LOCAL_QUEUE_PATH": str(tmp_path)}
    with running_portal(azurite_connection_string, "u" + uuid.uuid4().hex[:10], env=env) as broken:
        admin = broken.browser(OLIVIA)
        page = admin.get(f"{broken.url}{CONSOLE}/dead-letters", allow_redirects=False)
        posted = admin.post(
            f"{broken.url}{CONSOLE}/dead-letters/discard",
            data={"csrf_token": token_for(admin), "scope": "filter", "confirm": "yes", "why": "test"},
            allow_redirects=False,
        )

    assert page.status_code == 503
    assert "could not be read just now" in page.text
    assert posted.status_code == 503
