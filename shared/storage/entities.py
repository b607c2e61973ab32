"""Conversions between Python values and Table Storage entity properties, shared by every store.

Table Storage has no null, no nested objects and no enum type, and its keys forbid a few characters. These
helpers keep those rules in one place: keys are checked before a request is sent, datetimes are stored as
tz-aware UTC (a naive datetime is refused rather than guessed), and values read back are plain Python types
rather than the SDK's wrapper types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import EntityProperty

from shared.logs import get_logger
from shared.storage.errors import InvalidEntityError

_log = get_logger(__name__)

# Characters Table Storage refuses in PartitionKey and RowKey (plus control characters).
_FORBIDDEN_KEY_CHARS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
_MAX_KEY_BYTES = 1024
# A string property holds at most 64 KiB of UTF-16, i.e. 32K characters.
MAX_STRING_CHARS = 32 * 1024


def check_key(value: str, what: str) -> str:
    """Returns `value` if it can be a PartitionKey or RowKey, else raises InvalidEntityError."""
    if not isinstance(value, str) or not value:
        _log.warning("refused an empty or non-string table key", extra={"key_kind": what})
        raise InvalidEntityError(f"{what} must be a non-empty string, got {value!r}")
    if _FORBIDDEN_KEY_CHARS.search(value) or len(value.encode("utf-8")) > _MAX_KEY_BYTES:
        _log.warning("refused a table key with forbidden characters", extra={"key_kind": what})
        raise InvalidEntityError(
            f"{what} {value!r} contains '/', '\\', '#', '?', a control character or is too long"
        )
    return value


def to_utc(value: datetime, name: str) -> datetime:
    """The same instant in UTC; a naive datetime is refused because its zone would be a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        _log.warning("refused a naive datetime", extra={"property": name})
        raise InvalidEntityError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def put_datetime(entity: dict[str, Any], name: str, value: datetime | None) -> None:
    """Stores a datetime property; None is omitted, since Table Storage has no null."""
    if value is not None:
        entity[name] = to_utc(value, name)


def put_optional(entity: dict[str, Any], name: str, value: object | None) -> None:
    if value is not None:
        entity[name] = value


def check_string(name: str, value: str) -> str:
    if len(value) > MAX_STRING_CHARS:
        _log.warning("refused an oversized string property", extra={"property": name, "chars": len(value)})
        raise InvalidEntityError(
            f"{name} is {len(value)} characters; Table Storage allows {MAX_STRING_CHARS}"
        )
    return value


def _plain(value: object) -> object:
    # The SDK wraps Int64 values in EntityProperty and datetimes in its own datetime subclass.
    if isinstance(value, EntityProperty):
        return value.value
    return value


def get_str(entity: Mapping[str, Any], name: str, default: str = "") -> str:
    value = _plain(entity.get(name))
    return default if value is None else str(value)


def get_bool(entity: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = _plain(entity.get(name))
    return default if value is None else bool(value)


def get_int(entity: Mapping[str, Any], name: str) -> int | None:
    value = _plain(entity.get(name))
    return None if value is None else int(value)  # type: ignore[call-overload]


def get_datetime(entity: Mapping[str, Any], name: str) -> datetime | None:
    value = _plain(entity.get(name))
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidEntityError(f"stored property {name} is not a datetime: {type(value).__name__}")
    # combine() on the base class drops the SDK's datetime subclass and keeps the instant.
    return datetime.combine(value.date(), value.timetz()).astimezone(UTC)


def etag_of(entity: object) -> str:
    """The ETag the service returned with a read entity ('' when the SDK gave no metadata)."""
    metadata = getattr(entity, "metadata", None) or {}
    return str(metadata.get("etag") or "")
