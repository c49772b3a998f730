"""The one mapping from errors to HTTP answers, in each dialect's own error body.

Paths under `/api/v1` speak the Device Telemetry dialect
(`{"success": false, "error": {"code", "message"}}`); every other path speaks the
Lambda IoT Core dialect (`{"error": "..."}`).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

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

CODE_OF_STATUS = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "UNAVAILABLE",
}


def error_response(
    request: Request[Any, Any, Any],
    status: int,
    message: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    content: dict[str, Any]
    if request.url.path.startswith(TELEMETRY_PREFIX):
        code = code or CODE_OF_STATUS.get(status, HTTPStatus(status).name)
        content = {"success": False, "error": {"code": code, "message": message}}
    else:
        content = {"error": message}
    return Response(content, status_code=status, headers=headers)


def status_of(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 400


def on_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    headers = None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    status = status_of(exc)
    code = exc.code if status != 400 or type(exc).code != DomainError.code else None
    return error_response(request, status, str(exc), code, headers)


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
            parts.append(f"{key}: {text}" if key else text)
    return "; ".join(parts) or str(exc.detail) or "invalid request"


def on_unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "internal server error")


EXCEPTION_HANDLERS: Any = {
    DomainError: on_domain_error,
    HTTPException: on_http_error,
    Exception: on_unexpected_error,
}
