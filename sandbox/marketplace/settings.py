"""`SandboxSettings`: the knobs of the simulated Microsoft, checked on every change.

Code uses the snake_case fields, the control API the camelCase names. A bad value from the control page or
API is a 400 here and never reaches the marketplace's state file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

from sandbox.marketplace.errors import MarketplaceBadRequestError


@dataclass(frozen=True)
class SandboxSettings:
    """Knobs of the simulated Microsoft. Times are settings so tests can use fractions of a second."""

    webhook_url: str = "http://127.0.0.1:7071/api/webhook"
    landing_url: str = "http://127.0.0.1:7071/api/landing"
    auto_accept_seconds: float = 10.0
    ignore_rejections: bool = False
    webhook_max_attempts: int = 8
    webhook_base_delay_seconds: float = 1.0
    webhook_timeout_seconds: float = 10.0
    page_size: int = 100
    token_lifetime_seconds: float = 3600.0
    publisher_id: str = "contoso"
    # Answer as Microsoft's SaaS API emulator does (docs/wire-variants.md): ListOperations as a bare JSON
    # array and the operation's source spelled `operationRequestedSource`, so tests prove the app reads them.
    emulator_wire_format: bool = False

    _JSON_NAMES = {
        "webhookUrl": "webhook_url",
        "landingUrl": "landing_url",
        "autoAcceptSeconds": "auto_accept_seconds",
        "ignoreRejections": "ignore_rejections",
        "webhookMaxAttempts": "webhook_max_attempts",
        "webhookBaseDelaySeconds": "webhook_base_delay_seconds",
        "webhookTimeoutSeconds": "webhook_timeout_seconds",
        "pageSize": "page_size",
        "tokenLifetimeSeconds": "token_lifetime_seconds",
        "publisherId": "publisher_id",
        "emulatorWireFormat": "emulator_wire_format",
    }

    def to_json(self) -> dict[str, Any]:
        return {json_name: getattr(self, attr) for json_name, attr in self._JSON_NAMES.items()}

    def with_json(self, changes: Mapping[str, Any]) -> SandboxSettings:
        """A copy with camelCase `changes` applied; unknown keys and bad values raise
        MarketplaceBadRequestError."""
        unknown = sorted(set(changes) - set(self._JSON_NAMES))
        if unknown:
            raise MarketplaceBadRequestError(
                f"unknown setting(s) {unknown}; known: {sorted(self._JSON_NAMES)}"
            )
        return self.with_changes({self._JSON_NAMES[name]: value for name, value in changes.items()})

    def with_changes(self, changes: Mapping[str, Any]) -> SandboxSettings:
        """A copy with snake_case `changes` applied, each value checked."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise MarketplaceBadRequestError(f"unknown setting(s) {unknown}")
        checked = {name: _check_setting(name, value) for name, value in changes.items()}
        return replace(self, **checked)


def _check_setting(name: str, value: Any) -> Any:
    if name in {"webhook_url", "landing_url"}:
        return _check_url(name, value)
    if name in {"ignore_rejections", "emulator_wire_format"}:
        return _check_flag(name, value)
    if name in {"webhook_max_attempts", "page_size"}:
        return _check_whole(name, value, 1)
    if name == "publisher_id":
        if not isinstance(value, str) or not value.strip():
            raise MarketplaceBadRequestError("publisher_id must be a non-empty string")
        return value
    return _check_number(name, value, 0.0)


def _check_url(name: str, value: Any) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in {"http", "https"} or "#" in value:
        raise MarketplaceBadRequestError(
            f"{name} must be an absolute http(s) URL without '#' (R3), got {value!r}"
        )
    return value


def _check_number(name: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise MarketplaceBadRequestError(f"{name} must be a number >= {minimum}, got {value!r}")
    return float(value)


def _check_whole(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MarketplaceBadRequestError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise MarketplaceBadRequestError(f"{name} must be true or false, got {value!r}")
    return value
