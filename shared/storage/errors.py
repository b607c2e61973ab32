"""Errors the Table Storage adapters raise, so callers never need to know azure-core's exception types."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error raised by `shared.storage`."""


class ConcurrencyError(StorageError):
    """The row changed (or vanished) since it was read: re-read, re-decide, and write again."""


class AlreadyExistsError(StorageError):
    """An insert found a row with the same keys; inserts never overwrite."""


class InvalidEntityError(StorageError, ValueError):
    """A value cannot be stored as given (bad key, naive datetime, oversized property, missing etag)."""
