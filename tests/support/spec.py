"""Checks HTTP requests and responses against Microsoft's SaaS Fulfillment API v2 OpenAPI description.

Public API (kept stable: the client tests and the sandbox tests both use it):

- `validate_request(method, url, headers, body_bytes)`: raises AssertionError when a request the publisher
  sends does not match the spec (unknown path, missing or malformed `api-version`, non-GUID
  `x-ms-requestid`/`x-ms-correlationid`, missing `x-ms-marketplace-token`, body schema, no bearer token).
- `validate_response(method, url, status, headers, body_bytes)`: raises AssertionError when an answer to
  that request does not match the spec (undeclared status, missing body, schema violations, headers).
- `example_body(operation_id, status="200")`: a response body for an operation: the spec's own example when
  it has one (this spec has none today), else one built from the schema with every property filled in.
- `spec_path(url)`: the spec path a URL maps to (`/saas/...`); `load_spec()`: the spec as a dict.

`url` may be absolute with any base (`http://127.0.0.1:8123/api/saas/subscriptions/?api-version=...`) or a
bare path with query: everything before the first `/saas/` segment is treated as the base URL, because the
spec's server is `https://marketplaceapi.microsoft.com/api` and the sandbox serves under other bases.

The file is Microsoft's, copied unchanged into `docs/specs/` with its license. It has one defect that
openapi-core refuses: its OAuth2 `clientCredentials` flow lacks the required `scopes` map, so an empty one
is added in memory. The security scheme itself (an Entra bearer token) is checked here by hand, because
openapi-core does not evaluate OAuth2 schemes.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
import warnings
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SPEC_DIR = Path(__file__).resolve().parents[2] / "docs" / "specs"
SPEC_FILE = SPEC_DIR / "saasapi.v2.json"
SPEC_SERVER_URL = "https://marketplaceapi.microsoft.com/api"
_SPEC_HOST, _SPEC_PREFIX = "https://marketplaceapi.microsoft.com", "/api"

__all__ = [
    "SPEC_FILE",
    "SPEC_SERVER_URL",
    "example_body",
    "load_spec",
    "spec_path",
    "validate_request",
    "validate_response",
]


@cache
def load_spec() -> dict[str, Any]:
    """The spec as published (a fresh copy is not made: treat the result as read-only)."""
    return json.loads(SPEC_FILE.read_text(encoding="utf-8"))


@cache
def _openapi() -> OpenAPI:
    spec = copy.deepcopy(load_spec())
    for scheme in spec.get("components", {}).get("securitySchemes", {}).values():
        for flow in scheme.get("flows", {}).values():
            flow.setdefault("scopes", {})
    return OpenAPI.from_dict(spec)


def spec_path(url: str) -> str:
    """The `/saas/...` path of `url` with the base URL and query removed."""
    path = urlsplit(url).path
    index = path.find("/saas/")
    if index < 0:
        raise AssertionError(f"{url!r} is not a Fulfillment API URL: no '/saas/' segment in its path")
    return path[index:]


def _query_pairs(url: str) -> list[tuple[str, str]]:
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        # No parameter of this API is an array; a repeat means a client glued a query onto a query.
        raise AssertionError(f"query parameter(s) repeated in {url!r}: {', '.join(repeated)}")
    return pairs


def _headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(name).lower(): str(value) for name, value in items}


def _mock_request(
    method: str, url: str, headers: Mapping[str, str] | Iterable[tuple[str, str]], body_bytes: bytes | None
) -> MockRequest:
    lowered = _headers(headers)
    return MockRequest(
        _SPEC_HOST,
        method.lower(),
        _SPEC_PREFIX + spec_path(url),
        args=_query_pairs(url),  # type: ignore[arg-type]  # ImmutableMultiDict accepts pairs
        headers=lowered,
        data=body_bytes or None,
        content_type=lowered.get("content-type", "application/json").split(";")[0].strip(),
    )


def _explain(exc: BaseException) -> str:
    """openapi-core nests the useful words (schema errors) under causes; lift them into one message."""
    lines = [f"{type(exc).__name__}: {exc}"]
    seen: set[int] = {id(exc)}
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        lines.append(f"  caused by {type(cause).__name__}: {cause}")
        for schema_error in getattr(cause, "schema_errors", None) or ():
            location = "/".join(str(part) for part in getattr(schema_error, "absolute_path", ()))
            lines.append(f"    at {location or '<body>'}: {getattr(schema_error, 'message', schema_error)}")
        cause = cause.__cause__ or cause.__context__
    return "\n".join(lines)


def _matching_operation(method: str, path: str) -> Mapping[str, Any] | None:
    """The spec operation for `method path`; literal paths win over templated ones (resolve vs {id})."""
    candidates = sorted(load_spec()["paths"].items(), key=lambda item: item[0].count("{"))
    for template, methods in candidates:
        pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in methods:
            return methods[method.lower()]
    return None


def _check_required_parameters(method: str, url: str, headers: dict[str, str]) -> None:
    """openapi-core fills a missing required parameter from its schema default (api-version has one);
    the spec still requires the client to send it."""
    operation = _matching_operation(method, spec_path(url))
    present = {"query": {name for name, _ in _query_pairs(url)}, "header": set(headers)}
    for parameter in (operation or {}).get("parameters", []):
        parameter = _resolve(parameter)
        location, name = parameter.get("in"), str(parameter.get("name"))
        if parameter.get("required") and location in present:
            wanted = name.lower() if location == "header" else name
            if wanted not in present[location]:
                raise AssertionError(
                    f"request {method.upper()} {url} does not match the spec: "
                    f"missing required {location} parameter {name!r}"
                )


def _check_bearer(method: str, url: str, headers: dict[str, str]) -> None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AssertionError(
            f"{method.upper()} {spec_path(url)}: the spec requires an Entra bearer token "
            "(security AADToken): expected header 'authorization: Bearer <token>'"
        )


def validate_request(
    method: str,
    url: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body_bytes: bytes | None,
) -> None:
    """Raises AssertionError, explaining why, when this request does not match the spec."""
    request = _mock_request(method, url, headers, body_bytes)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unsupported scheme type")
        try:
            _openapi().validate_request(request)
        except Exception as exc:  # openapi-core raises a family of errors; all mean "does not match"
            raise AssertionError(
                f"request {method.upper()} {url} does not match the spec:\n{_explain(exc)}"
            ) from exc
    _check_required_parameters(method, url, _headers(headers))
    _check_bearer(method, url, _headers(headers))


def validate_response(
    method: str,
    url: str,
    status: int,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body_bytes: bytes | None,
) -> None:
    """Raises AssertionError, explaining why, when this answer to `method url` does not match the spec.

    The request side is not checked here (use validate_request); only its method and path pick the
    operation whose responses apply.
    """
    lowered = _headers(headers)
    request = _mock_request(method, url, {}, None)
    response = MockResponse(
        body_bytes or b"",
        status_code=status,
        headers=lowered,
        content_type=lowered.get("content-type", "application/json").split(";")[0].strip(),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unsupported scheme type")
        try:
            _openapi().validate_response(request, response)
        except Exception as exc:  # see validate_request
            raise AssertionError(
                f"response {status} to {method.upper()} {url} does not match the spec:\n{_explain(exc)}"
            ) from exc


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        node: Any = load_spec()
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


_FORMAT_SAMPLES = {
    "date-time": "2024-05-01T00:00:00Z",
    "email": "buyer@contoso.example",
    "uri": SPEC_SERVER_URL + "/saas/subscriptions/?continuationToken=sample&api-version=2018-08-31",
}


def _string_sample(schema: Mapping[str, Any], where: str) -> str:
    if schema.get("enum"):
        return str(schema["enum"][0])
    if schema.get("format") == "uuid":
        # Distinct but stable per property, so a parser that mixes fields up is caught.
        return str(uuid.uuid5(uuid.NAMESPACE_URL, where))
    return _FORMAT_SAMPLES.get(str(schema.get("format")), f"sample-{where.rsplit('/', 1)[-1]}")


def _sample(schema: Mapping[str, Any], where: str) -> Any:
    schema = _resolve(schema)
    if "example" in schema:
        return copy.deepcopy(schema["example"])
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: _sample(sub, f"{where}/{name}") for name, sub in properties.items()}
    if kind == "array":
        return [_sample(schema.get("items", {}), f"{where}/0")]
    if kind == "integer":
        return 5
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return _string_sample(schema, where)


def _operation(operation_id: str) -> Mapping[str, Any]:
    for methods in load_spec()["paths"].values():
        for operation in methods.values():
            if isinstance(operation, Mapping) and operation.get("operationId") == operation_id:
                return operation
    raise AssertionError(f"the spec has no operation {operation_id!r}")


def example_body(operation_id: str, status: str = "200") -> Any:
    """A body for `operation_id`'s `status` answer: the spec's example if any, else one from the schema.

    Returns None when the spec declares no body for that answer. Callers get a fresh object to modify.
    """
    response = _resolve(_operation(operation_id)["responses"][status])
    media = response.get("content", {}).get("application/json")
    if media is None:
        return None
    if "example" in media:
        return copy.deepcopy(media["example"])
    examples = media.get("examples") or {}
    if examples:
        return copy.deepcopy(next(iter(examples.values())).get("value"))
    return _sample(media["schema"], operation_id)
