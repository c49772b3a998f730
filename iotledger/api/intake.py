"""The intake lane: `POST /api/v1/devices/{id}/telemetry` answered in front of Litestar.

Devices post readings far more often than anything else is asked of the API, and
Litestar's own work per request (routing, signature model, dependencies, response
objects) costs about as much as recording the reading. The lane answers the common
form of that one request as plain ASGI: it reads the body and the caller with the
functions Litestar's handler has them read with (`decode_json`, `caller_of`), in the
same order, and hands them to the endpoint's one function (`post_telemetry`), whose
errors it answers through the same mapping (`api.errors`). Anything out of the ordinary
(no Content-Length, a body over the limit, an id that is not a canonical UUID) passes to
Litestar untouched, and so does every other request.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send
from msgspec import UNSET

from iotledger.api.auth import caller_of
from iotledger.api.bodies import decode_json
from iotledger.api.deps import Parts
from iotledger.api.errors import answer_or_log, error_body
from iotledger.api.telemetry.telemetry import Created, TelemetryIntake, post_telemetry

_TELEMETRY = re.compile(
    r"/api/v1/devices/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/telemetry/?",
    re.IGNORECASE,
)
TEMPLATE = "/api/v1/devices/{device_id}/telemetry"
"""The route of the requests this lane answers, as Litestar names it (for the metrics)."""
_JSON = (b"content-type", b"application/json")
_encode = msgspec.json.Encoder().encode


class IntakeLane:
    """ASGI: the lane for telemetry posts, in front of `app` (the Litestar application,
    whose telemetry handler takes the same `intake`)."""

    def __init__(self, app: ASGIApp, parts: Parts, intake: TelemetryIntake) -> None:
        self.app = app
        self.tokens = parts.tokens
        self.credentials = parts.credentials
        self.intake = intake
        self.max_body = parts.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] == "POST":
            device_id = self._device_of(scope)
            if device_id is not None:
                scope["path_template"] = TEMPLATE
                await self._post_telemetry(scope, device_id, receive, send)
                return
        await self.app(scope, receive, send)

    def _device_of(self, scope: HTTPScope) -> UUID | None:
        """The device of a telemetry post this lane takes; None leaves it to Litestar."""
        match = _TELEMETRY.fullmatch(scope["path"])
        if match is None:
            return None
        length = _header(scope, b"content-length")
        if not (length.isascii() and length.isdigit()) or int(length) > self.max_body:
            return None
        return UUID(match.group(1))

    async def _post_telemetry(
        self, scope: HTTPScope, device_id: UUID, receive: Receive, send: Send
    ) -> None:
        body = await _body(receive)
        if body is None:
            return  # the client went away
        path = scope["path"]
        try:
            created = await self._record(scope, device_id, body)
        except Exception as e:
            answer = answer_or_log(e, "POST", path)
            content = error_body(path, answer.status, answer.message, answer.code)
            await _answer(send, answer.status, content, answer.headers)
        else:
            await _answer(send, 201, created)

    async def _record(self, scope: HTTPScope, device_id: UUID, body: bytes) -> Created:
        """In Litestar's order: a body that is not JSON, then the caller, then the rest."""
        document = decode_json(body) if body else UNSET
        authorization = _header(scope, b"authorization")
        caller = await caller_of(self.tokens, self.credentials, authorization, device_id)
        return await post_telemetry(self.intake, device_id, document, caller)


async def _body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _header(scope: HTTPScope, wanted: bytes) -> str:
    for name, value in scope["headers"]:
        if name == wanted:
            return value.decode("latin-1")
    return ""


async def _answer(
    send: Send, status: int, content: Any, headers: dict[str, str] | None = None
) -> None:
    body = _encode(content)
    raw = [_JSON, (b"content-length", b"%d" % len(body))]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})
