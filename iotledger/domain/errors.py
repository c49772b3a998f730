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


class TooManyReadings(InvalidInput):
    """A batch of readings past the limit (`IOTLEDGER_MAX_BATCH_READINGS`); over MQTT the
    message is dropped as `too_many_readings`, so an operator tells it from a malformed one."""


class NotFound(DomainError):
    """Absent, or not the caller's to see: the two look the same from outside.

    Each kind of thing has its own class, carrying its message, so that an edge tells
    them apart by class (MQTT counts an unknown device and an unknown command apart).
    """

    code = "NOT_FOUND"
    message = "resource not found"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)


class DeviceNotFound(NotFound):
    """Never registered, deleted, or not the caller's to see."""

    message = "device not found"


class SensorNotFound(NotFound):
    """Also a sensor removed, or one of a device the caller may not see."""

    message = "sensor not found"


class ActorNotFound(NotFound):
    message = "actor not found"


class CommandNotFound(NotFound):
    """Also a command of another device than the one named (by the path, or the topic)."""

    message = "command not found"


class ReadingNotFound(NotFound):
    """Never recorded, or deleted (its history stays in the log)."""

    message = "reading not found"


class GatewayNotFound(NotFound):
    """Also one revoked, or another user's: a gateway is its owner's alone."""

    message = "gateway not found"


class UserNotFound(NotFound):
    message = "user not found"


class NoCredentials(NotFound):
    """A revocation of credentials the device does not have (never issued, or revoked)."""

    message = "device has no credentials"


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
