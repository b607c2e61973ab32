"""CSRF synchronizer tokens bound to the session."""

from __future__ import annotations

import logging

import pytest

from shared.web import csrf


def test_issued_token_verifies_for_its_session() -> None:
    session: dict[str, str] = {}

    token = csrf.issue(session)

    assert csrf.CSRF_SESSION_KEY in session
    assert csrf.verify(session, token)


def test_tokens_are_masked_differently_each_time_and_all_verify() -> None:
    session: dict[str, str] = {}

    tokens = [csrf.issue(session) for _ in range(5)]

    assert len(set(tokens)) == 5
    assert all(csrf.verify(session, t) for t in tokens)


def test_issue_keeps_an_existing_secret() -> None:
    session: dict[str, str] = {}
    csrf.issue(session)
    secret = session[csrf.CSRF_SESSION_KEY]

    csrf.issue(session)

    assert session[csrf.CSRF_SESSION_KEY] == secret


def test_token_from_another_session_fails(caplog: pytest.LogCaptureFixture) -> None:
    mine: dict[str, str] = {}
    theirs: dict[str, str] = {}
    csrf.issue(mine)
    their_token = csrf.issue(theirs)

    with caplog.at_level(logging.WARNING, logger="shared.web.csrf"):
        assert not csrf.verify(mine, their_token)

    assert "does not belong to this session" in caplog.text


@pytest.mark.parametrize("submitted", [None, "", "   "])
def test_missing_token_fails(submitted: str | None) -> None:
    session: dict[str, str] = {}
    csrf.issue(session)

    assert not csrf.verify(session, submitted)


def test_session_without_secret_fails_even_with_a_wellformed_token() -> None:
    token = csrf.issue({})

    assert not csrf.verify({}, token)


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-2],
        lambda t: t + "AA",
        lambda t: "!!!" + t[3:],
        lambda t: ("A" if t[40] != "A" else "B").join((t[:40], t[41:])),
        lambda t: "A" * len(t),
    ],
)
def test_altered_token_fails(forge) -> None:
    session: dict[str, str] = {}
    token = csrf.issue(session)

    assert not csrf.verify(session, forge(token))


def test_corrupted_session_secret_fails_and_issue_replaces_it() -> None:
    session = {csrf.CSRF_SESSION_KEY: "not-hex"}

    assert not csrf.verify(session, "A" * 86)
    token = csrf.issue(session)
    assert csrf.verify(session, token)
