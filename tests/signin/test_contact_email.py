"""The contact email rule (R11): the pure order of candidates, and Graph /me through the sandbox."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from shared.identity.contact_email import (
    GraphProfile,
    choose_contact_email,
    contact_email_for,
    fetch_graph_profile,
    looks_like_address,
)
from shared.identity.id_token import IdTokenClaims
from tests.signin.test_app_stack import (
    CONTOSO,
    GUEST,
    MEGAN,
    MSA_TENANT,
    AppStack,
    app_stack,
    graph_token,
)

__all__ = ["app_stack"]  # the fixture, imported so pytest finds it here

CLAIMS = IdTokenClaims(
    CONTOSO, MEGAN, "Megan", email="token@contoso.com", preferred_username="upn@contoso.com"
)


@pytest.mark.parametrize(
    ("profile", "claims", "expected"),
    [
        (GraphProfile("mail@contoso.com", "upn@contoso.com"), CLAIMS, "mail@contoso.com"),
        (GraphProfile("", "graph.upn@contoso.com"), CLAIMS, "graph.upn@contoso.com"),
        (GraphProfile("", "guest_outlook.com#EXT#@fabrikam.onmicrosoft.com"), CLAIMS, "token@contoso.com"),
        (None, CLAIMS, "token@contoso.com"),
        (None, IdTokenClaims(CONTOSO, MEGAN, preferred_username="upn@contoso.com"), "upn@contoso.com"),
        (
            GraphProfile("", "a#EXT#@b.example"),
            IdTokenClaims(CONTOSO, MEGAN, preferred_username="a#EXT#@b.example"),
            "",
        ),
    ],
    ids=["mail", "upn-fallback", "guest-upn-skipped", "no-graph", "preferred-username", "nothing-usable"],
)
def test_candidates_are_taken_in_r11_order(
    profile: GraphProfile | None, claims: IdTokenClaims, expected: str
) -> None:
    assert choose_contact_email(profile, claims) == expected


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a@b.example", True),
        ("a b@c.example", False),
        ("a@b", False),
        ("x#EXT#@y.example", False),
        ("", False),
    ],
)
def test_what_looks_like_an_address(value: str, ok: bool) -> None:
    assert looks_like_address(value) is ok


def test_graph_me_of_a_user_without_mailbox_gives_the_upn(app_stack: AppStack) -> None:
    graph = f"{app_stack.sandbox.https_url}/v1.0"
    http = requests.Session()
    http.verify = str(app_stack.sandbox.ca_bundle)
    profile = fetch_graph_profile(graph, graph_token(app_stack, MEGAN), session=http)
    assert profile == GraphProfile(mail="", user_principal_name="megan.bowen@contoso.onmicrosoft.com")
    claims = IdTokenClaims(CONTOSO, MEGAN, email="", preferred_username="someone.else@contoso.com")
    assert contact_email_for(claims, graph_token(app_stack, MEGAN), graph, session=http) == (
        "megan.bowen@contoso.onmicrosoft.com"
    )


def test_a_refused_graph_call_falls_back_to_the_id_token(app_stack: AppStack) -> None:
    http = requests.Session()
    http.verify = str(app_stack.sandbox.ca_bundle)
    graph = f"{app_stack.sandbox.https_url}/v1.0"
    assert fetch_graph_profile(graph, "forged-token", session=http) is None
    claims = IdTokenClaims("22222222-0000-4000-8000-000000000000", GUEST, email="guest@outlook.com")
    assert contact_email_for(claims, "forged-token", graph, session=http) == "guest@outlook.com"


class _CountingGraph(BaseHTTPRequestHandler):
    """A Graph /me that always has a mailbox, and counts who asked."""

    calls = 0

    def do_GET(self) -> None:
        type(self).calls += 1
        body = json.dumps({"mail": "graph@contoso.com", "userPrincipalName": "upn@contoso.com"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def test_personal_accounts_never_call_graph() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CountingGraph)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    graph = f"http://127.0.0.1:{server.server_port}/v1.0"
    try:
        personal = IdTokenClaims(MSA_TENANT, "0000", email="pat@outlook.com")
        assert contact_email_for(personal, "token", graph) == "pat@outlook.com"
        assert _CountingGraph.calls == 0
        work = IdTokenClaims(CONTOSO, MEGAN, email="token@contoso.com")
        assert contact_email_for(work, "token", graph) == "graph@contoso.com"
        assert _CountingGraph.calls == 1
    finally:
        server.shutdown()
        server.server_close()
