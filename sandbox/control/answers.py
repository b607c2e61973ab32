"""How the control surface answers: JSON documents, `{"error": {"code", "message"}}` refusals, request bodies
and form fields read strictly, and the page's redirect back to itself with a message."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from sandbox.catalog import CatalogError
from sandbox.marketplace.errors import MarketplaceBadRequestError


class ControlError(Exception):
    """A refusal of the control surface itself (not of the marketplace), with its HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def json_answer(document: Any, status: int = 200) -> Response:
    return Response(json.dumps(document, indent=1), status=status, mimetype="application/json")


def error_answer(status: int, code: str, message: str) -> Response:
    return json_answer({"error": {"code": code, "message": message}}, status)


def json_body(request: Request) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlError(400, "BadRequest", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ControlError(400, "BadRequest", "the body must be a JSON object")
    return body


def catalog_call(parse: Callable[[], Any]) -> Any:
    """Runs a catalog parser; its CatalogError becomes a 400 naming the faulty field."""
    try:
        return parse()
    except CatalogError as exc:
        raise ControlError(400, "BadRequest", str(exc)) from exc


def form_int(raw: str, name: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise MarketplaceBadRequestError(f"{name} must be a whole number, got {raw!r}") from None


def form_number(raw: str, name: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise MarketplaceBadRequestError(f"{name} must be a number, got {raw!r}") from None


def back_to_page(message: str, landing_url: str = "") -> Response:
    query = {"message": message, **({"landing": landing_url} if landing_url else {})}
    return redirect(f"/?{urlencode(query)}", code=303)
