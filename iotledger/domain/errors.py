"""The domain's errors: every failure a user can cause, named once.

The API maps each class to a status code and to each dialect's error body in one
place (`iotledger.api.errors`); nothing else in the code decides a status code.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a client can cause; its message is safe to show."""

    code = "ERROR"


class InvalidInput(DomainError):
    code = "VALIDATION_ERROR"


class UnstorableText(InvalidInput):
    """Text no read model could keep (a NUL character, a lone surrogate): see
    `iotledger.domain.storable`."""


class NotFound(DomainError):
    code = "NOT_FOUND"


class Conflict(DomainError):
    code = "CONFLICT"


class HeldElsewhere(Conflict):
    """What a request names is another device's: `what` is `mac_address` or `component`.

    Over MQTT the message is dropped and counted by that reason, so an operator
    sees which kind of clash keeps a device's announcement out.
    """

    def __init__(self, message: str, what: str) -> None:
        super().__init__(message)
        self.what = what


class Unauthorized(DomainError):
    code = "UNAUTHORIZED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class TooManyRequests(DomainError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency (the broker, the database) cannot take the request now."""

    code = "UNAVAILABLE"
