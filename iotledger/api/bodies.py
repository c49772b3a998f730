"""JSON request bodies: the one decoding that the intake lane and Litestar share.

msgspec decodes nested containers by recursion, so a body nested a few thousand
levels deep ends in a `RecursionError`, and bytes that are not UTF-8 in a
`UnicodeDecodeError`: unexpected errors, answered 500. Both are the client's
mistake, and so is a document deeper than any reading, device or user needs
(`MAX_JSON_DEPTH`): nested deeper, every later encode, projection and query of it
would pay for it. Each answers 400 here, before a token is checked or a field is read.

An endpoint that is also answered in front of Litestar (`api.intake`) takes its body as
a `JsonDocument`: Litestar decodes it here and hands the handler the JSON values, and the
one function both roads call reads the fields, so nothing of the endpoint is written
twice. Its OpenAPI document still names the body's type.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
from litestar import Request
from litestar.dto import AbstractDTO
from litestar.openapi.spec import Reference, Schema
from litestar.types import Empty
from litestar.typing import FieldDefinition

from iotledger.domain.errors import InvalidInput

MAX_JSON_DEPTH = 32
"""The most containers (objects, arrays) a body may hold one inside the other."""
TOO_DEEP = f"the body is nested more than {MAX_JSON_DEPTH} levels deep"
NOT_UTF8 = "the body is not valid UTF-8"

_decode = msgspec.json.Decoder().decode


def decode_json(body: bytes) -> Any:
    """A JSON body as Python values; InvalidInput if it is not JSON, not UTF-8, or too deep."""
    try:
        value = _decode(body)
    except RecursionError:
        raise InvalidInput(TOO_DEEP) from None
    except UnicodeDecodeError:
        raise InvalidInput(NOT_UTF8) from None
    except msgspec.DecodeError as e:
        raise InvalidInput(str(e)) from None
    if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH and _too_deep(value):
        raise InvalidInput(TOO_DEEP)
    return value


def _too_deep(value: Any) -> bool:
    """Whether `value` nests more than MAX_JSON_DEPTH containers (without recursion)."""
    level: list[Any] = [value]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return any(isinstance(item, dict | list) for item in level)


class JsonBodyRequest(Request[Any, Any, Any]):
    """Litestar's request, its JSON body decoded by `decode_json`."""

    async def json(self) -> Any:
        if self._json is Empty:
            self._json = decode_json(await self.body() or b"null")
        return self._json


class JsonDocument(AbstractDTO[Any]):
    """A JSON body handed over as the values `decode_json` makes of it (`UNSET` when the
    body is empty), and described in the OpenAPI document as `documents`.

    The handler declares `data: JSONBody[Any] = UNSET` and reads the fields itself: the lane in
    front of Litestar calls the same function with the same values.
    """

    documents: ClassVar[Any] = Any
    """The body's type, as the OpenAPI document describes it."""

    def decode_bytes(self, value: bytes) -> Any:
        return decode_json(value)

    # Litestar calls these by keyword: their arguments keep its names, used or not.

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: Any = None
    ) -> None:
        """Nothing to build: no Litestar DTO backend decodes or encodes for it."""

    @classmethod
    def create_openapi_schema(
        cls,
        field_definition: FieldDefinition,  # noqa: ARG003
        handler_id: str,  # noqa: ARG003
        schema_creator: Any,
    ) -> Reference | Schema:
        schema: Reference | Schema = schema_creator.for_field_definition(
            FieldDefinition.from_annotation(cls.documents)
        )
        return schema
