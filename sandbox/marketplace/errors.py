"""Refusals of the simulated Microsoft: each carries the HTTP status and code the Fulfillment API sends."""

from __future__ import annotations


class MarketplaceError(Exception):
    """A request Microsoft would refuse; `status` is the HTTP status the Fulfillment API answers with."""

    status = 500
    code = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MarketplaceBadRequestError(MarketplaceError):
    status = 400
    code = "BadRequest"


class MarketplaceNotFoundError(MarketplaceError):
    status = 404
    code = "NotFound"


class MarketplaceConflictError(MarketplaceError):
    status = 409
    code = "Conflict"
