"""Pagination: the Device Telemetry dialect's cursors, the Lambda dialect's page numbers.

A list is a bare JSON array; its meta travels in headers: `X-Limit` always,
`X-Next-Cursor` only when there is a next page. A cursor is opaque to clients
(URL-safe base64) and holds the list's name and the sort key of the last row
sent, so a page starts strictly after it and rows added during a walk never
shift the pages. A cursor of another list, or a forged one, answers 400, and so does
one holding an integer that PostgreSQL's bigint cannot hold.

A Lambda list takes `limit` and `page` and skips `page * limit` rows: page numbers
stop where that offset would no longer fit in a bigint.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Annotated, TypeVar

import msgspec
from litestar import Response
from litestar.datastructures import ResponseHeader
from litestar.params import QueryParameter

from iotledger.domain.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
BIGINT = range(-(2**63), 2**63)
INVALID_CURSOR = "invalid cursor"
LAMBDA_MAX_LIMIT = 1000
MAX_PAGE = BIGINT.stop // LAMBDA_MAX_LIMIT - 1

Limit = Annotated[
    int,
    QueryParameter(
        ge=1, le=MAX_LIMIT, description=f"Rows per page (1 to {MAX_LIMIT}, default {DEFAULT_LIMIT})"
    ),
]
PageNumber = Annotated[
    int, QueryParameter(ge=0, le=MAX_PAGE, description="Page number, from 0 (with limit)")
]
Cursor = Annotated[
    str | None,
    QueryParameter(max_length=512, description="The `X-Next-Cursor` of the previous page"),
]

PAGE_HEADERS = [
    ResponseHeader(
        name="X-Limit", description="The page size used", required=True, documentation_only=True
    ),
    ResponseHeader(
        name="X-Next-Cursor",
        description="Where the next page starts; absent on the last page",
        required=False,
        documentation_only=True,
    ),
]


def encode_cursor(list_name: str, key: Sequence[int]) -> str:
    raw = msgspec.json.encode([list_name, *key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(list_name: str, cursor: str | None, width: int = 1) -> tuple[int, ...] | None:
    """The sort key a cursor holds, None for the first page; InvalidInput if it is not ours."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = msgspec.json.decode(raw, type=list[str | int])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidInput(INVALID_CURSOR) from None
    name, key = decoded[:1], decoded[1:]
    if name != [list_name] or len(key) != width or not all(k in BIGINT for k in key):
        raise InvalidInput(INVALID_CURSOR)
    return tuple(int(k) for k in key)


def page_response(
    items: list[T], list_name: str, limit: int, next_key: Sequence[int] | None
) -> Response[list[T]]:
    headers = {"X-Limit": str(limit)}
    if next_key is not None:
        headers["X-Next-Cursor"] = encode_cursor(list_name, next_key)
    return Response(items, headers=headers)
