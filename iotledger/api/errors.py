"""The one mapping from errors to HTTP answers, in each dialect's own error body.

Paths under `/api/v1` speak the Device Telemetry dialect
(`{"success": false, "error": {"code", "message"}}`); every other path speaks the
Lambda IoT Core dialect (`{"error": "..."}`).

A database that cannot answer in time is an outage, not a bug: a statement or lock
timeout, a pool with no connection free, a database that is down (psycopg's
`OperationalError`, or eventsourcing's wrapping of it) answers 503 with `Retry-After`.
Nothing of such a request is stored: each write is one transaction, and a timeout
rolls it back.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any, Literal, NamedTuple

import msgspec
import psycopg
from eventsourcing import persistence
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from iotledger.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)

TELEMETRY_PREFIX = "/api/v1"

STATUS_OF: dict[type[DomainError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooManyRequests: 429,
    Unavailable: 503,
}
"""The status each kind of domain error answers; its code is the class's own (`code`)."""

CODE_OF_STATUS = {status: error.code for error, status in STATUS_OF.items()} | {
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    500: "INTERNAL_ERROR",
}
"""The Device Telemetry code of an answer by its status: a domain error's, and those of
the refusals no domain error causes (Litestar's, the body limit, a bug)."""


class TelemetryErrorDetail(msgspec.Struct):
    code: str
    message: str


class TelemetryError(msgspec.Struct):
    """The Device Telemetry dialect's error body."""

    success: Literal[False]
    error: TelemetryErrorDetail


class LambdaError(msgspec.Struct):
    """The Lambda IoT Core dialect's error body."""

    error: str


ErrorBody = TelemetryError | LambdaError


def speaks_telemetry(path: str) -> bool:
    """Whether `path` (a request's path or a route template) is the Device Telemetry dialect's."""
    return path.startswith(TELEMETRY_PREFIX)


def error_body(path: str, status: int, message: str, code: str | None = None) -> ErrorBody:
    """The error body of the dialect `path` speaks."""
    if speaks_telemetry(path):
        code = code or CODE_OF_STATUS.get(status, HTTPStatus(status).name)
        return TelemetryError(success=False, error=TelemetryErrorDetail(code, message))
    return LambdaError(error=message)


def error_response(
    request: Request[Any, Any, Any],
    status: int,
    message: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    content = error_body(request.url.path, status, message, code)
    return Response(content, status_code=status, headers=headers)


def status_of(error: DomainError) -> int:
    return status_class_of(type(error))


def status_class_of(error: type[Exception]) -> int:
    """The status an error of this class answers: a domain error's by `STATUS_OF` (400
    when unnamed there), anything else 500."""
    for cls in error.__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 400 if issubclass(error, DomainError) else 500


class Answer(NamedTuple):
    """How a domain error is answered, in whichever dialect."""

    status: int
    message: str
    code: str | None
    headers: dict[str, str] | None


OUTAGES: tuple[type[Exception], ...] = (
    psycopg.OperationalError,  # timeouts, psycopg_pool.PoolTimeout, a lost connection
    persistence.OperationalError,  # the same, raised through eventsourcing
    persistence.InterfaceError,  # a connection eventsourcing found closed
)
OUTAGE = "the database is busy or unreachable; try again shortly"
RETRY_AFTER = "2"
"""Seconds: about what a lock or a full pool makes a request wait before it gives up."""


def answer_to(exc: Exception) -> Answer | None:
    """The answer to a domain error or an outage (`OUTAGES`); None to anything else (a bug)."""
    if isinstance(exc, OUTAGES):
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return Answer(503, OUTAGE, None, {"Retry-After": RETRY_AFTER})
    if not isinstance(exc, DomainError):
        return None
    headers = None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    status = status_of(exc)
    if status == 503:
        headers = {"Retry-After": RETRY_AFTER}
    code = exc.code if status != 400 or type(exc).code != DomainError.code else None
    return Answer(status, str(exc), code, headers)


def answer_or_log(exc: Exception, method: str, path: str) -> Answer:
    """The answer to any error; one that `answer_to` does not know is logged, and a 500."""
    answer = answer_to(exc)
    if answer is None:
        log.exception("unexpected error on %s %s", method, path, exc_info=exc)
        return Answer(500, UNEXPECTED, None, None)
    return answer


def on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    answer = answer_or_log(exc, request.method, request.url.path)
    return error_response(request, answer.status, answer.message, answer.code, answer.headers)


def on_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    message = exc.detail or HTTPStatus(exc.status_code).phrase
    if isinstance(exc, ValidationException):
        message = describe_validation(exc)
    if exc.status_code == 404 and not isinstance(exc, ValidationException):
        message = "resource not found"
    return error_response(request, exc.status_code, message, headers=exc.headers)


def describe_validation(exc: ValidationException) -> str:
    """One readable line out of Litestar's (or msgspec's) validation details."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    for problem in problems:
        if isinstance(problem, dict):
            key = problem.get("key")
            text = str(problem.get("message", "invalid"))
            if key and text == repr(key):  # Litestar's KeyError for a missing body
                text = REQUIRED
            if key == "data":
                key = _in_array_body(exc) or key
            parts.append(f"{key}: {text}" if key else text)
    return "; ".join(parts) or str(exc.detail) or "invalid request"


REQUIRED = "required"
_AT_PATH = re.compile(r"`\$\.?(.+)`$")


def describe_body_error(exc: msgspec.ValidationError) -> str:
    """A request body that does not fit its type, said as `describe_validation` says it
    of a body Litestar decoded (`data` names the body itself)."""
    text = str(exc)
    at = _AT_PATH.search(text)
    return f"{at.group(1) if at else 'data'}: {text.split(' - ', maxsplit=1)[0]}"


def _in_array_body(exc: ValidationException) -> str | None:
    """Where in a JSON array body the error is (`[3].payload`), which Litestar's own
    key leaves out (it reads only paths that start `$.`) and msgspec's error keeps."""
    at = _AT_PATH.search(str(exc.__cause__))
    if at is None or not at.group(1).startswith("data["):
        return None
    return at.group(1).removeprefix("data")


UNEXPECTED = "internal server error"


EXCEPTION_HANDLERS: Any = {
    HTTPException: on_http_error,
    Exception: on_error,
}
