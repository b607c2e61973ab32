"""The sandbox's stand-in for Microsoft Graph `GET /v1.0/me` (R11), served beside the Entra stand-in.

It answers for a bearer access token the sandbox's Entra ID issued at a sign-in (audience Graph), with the
test user's profile as Graph shows it: `mail` is null for users without a mailbox, `userPrincipalName` is
always set. `$select` narrows the answer like Graph's. Anything else under /v1.0 is a Graph-shaped 404.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Request, Response

from sandbox.entra.signing import AccessDenied
from sandbox.entra.stand_in import EntraStandIn
from sandbox.identities import TestUser

log = logging.getLogger("sandbox.graph")

GRAPH_PREFIX = "/v1.0/"
ME_PATH = "/v1.0/me"


class GraphStandIn:
    """Plays Graph for the users of an Entra stand-in, trusting only the access tokens it issued."""

    def __init__(self, entra: EntraStandIn) -> None:
        self.entra = entra

    def dispatch(self, request: Request) -> Response | None:
        """Answers a Graph path; None for any other path, so the next part of the sandbox can try."""
        if not request.path.startswith(GRAPH_PREFIX):
            return None
        if request.path.rstrip("/") != ME_PATH:
            return _graph_error(
                404, "Request_ResourceNotFound", f"{request.path} is not served by the sandbox"
            )
        if request.method != "GET":
            return _graph_error(405, "Request_BadRequest", f"{request.method} is not allowed on /me")
        try:
            claims = self.entra.verify_graph_access_token(request.headers.get("Authorization"))
        except AccessDenied as exc:
            log.warning("graph token refused", extra={"reason": exc.reason})
            return _graph_error(401, "InvalidAuthenticationToken", "Access token is missing or invalid.")
        user = self.entra.identities.user(str(claims.get("oid")))
        if user is None:
            return _graph_error(404, "Request_ResourceNotFound", "The signed-in user does not exist.")
        return _json(_selected(profile_of(user), request.args.get("$select", "")))


def profile_of(user: TestUser) -> dict[str, Any]:
    """The user as Graph's v1.0 `user` resource shows them (the properties /me returns by default)."""
    given, _, surname = user.display_name.partition(" ")
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
        "id": user.object_id,
        "displayName": user.display_name,
        "givenName": given or None,
        "surname": surname or None,
        "mail": user.mail,
        "userPrincipalName": user.username,
        "businessPhones": [],
        "jobTitle": None,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
    }


def _selected(profile: dict[str, Any], select: str) -> dict[str, Any]:
    wanted = {name.strip() for name in select.split(",") if name.strip()}
    if not wanted:
        return profile
    return {name: value for name, value in profile.items() if name in wanted or name == "@odata.context"}


def _graph_error(status: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


def _json(document: Mapping[str, Any], status: int = 200) -> Response:
    response = Response(json.dumps(document), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
