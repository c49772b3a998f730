"""Server-Sent Events as an ASGI response: pages of the log, woken by appends, bounded.

A stream keeps one number, the log position it has sent up to; when woken (see
`adapters.postgres.log_wake`) it reads the next page after it and sends it. So what one
client costs the server is at most one page in flight, whatever it does: a client
that stops reading fills the socket's buffers, its next send waits, and when that
wait passes `stall_timeout` the stream ends (the client resumes later with
`Last-Event-ID`, from the log). A comment (`: keep-alive`) goes out whenever
nothing else did for `heartbeat` seconds, so that proxies keep an idle stream
open; the stream then also reads once more, in case a wake-up was lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NamedTuple

from litestar.types import Receive, Scope, Send

from iotledger.adapters.postgres.log_wake import LogWake, Wakeup

log = logging.getLogger(__name__)

HEARTBEAT = b": keep-alive\n\n"
PACE = 0.05
"""Seconds at least between two reads of one stream while appends keep coming: under a
steady flow of readings a stream reads a page per 50 ms, not one per append."""
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
]


class Frames(NamedTuple):
    """A page of the log as events to send, and where the next page starts after."""

    body: bytes
    end: int
    full: bool


def frame(position: int, kind: str, data: bytes) -> bytes:
    """One event: `data` is one line of JSON (msgspec writes no newline)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (position, kind.encode(), data)


class EventStream:
    """`text/event-stream` of what `read(after)` finds, from `after` on, until the client
    goes, stalls, or the server stops."""

    def __init__(
        self,
        read: Callable[[int], Awaitable[Frames]],
        after: int,
        wake: LogWake,
        heartbeat: float,
        stall_timeout: float,
    ) -> None:
        self._read = read
        self._after = after
        self._wake = wake
        self._heartbeat = heartbeat
        self._stall_timeout = stall_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        sender = asyncio.ensure_future(self._send_events(send))
        listener = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, listener):
                task.cancel()
            outcome, _ = await asyncio.gather(sender, listener, return_exceptions=True)
        if isinstance(outcome, Exception):
            raise outcome  # a failure of the database ends the stream loudly

    async def _send_events(self, send: Send) -> None:
        with self._wake.subscription() as wakeup:
            async for chunk in self._chunks(wakeup):
                body = {"type": "http.response.body", "body": chunk, "more_body": True}
                try:
                    await asyncio.wait_for(send(body), self._stall_timeout)  # type: ignore[arg-type]
                except TimeoutError:
                    log.warning("stream cut: the client read nothing for %ss", self._stall_timeout)
                    return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _chunks(self, wakeup: Wakeup) -> AsyncIterator[bytes]:
        clock = asyncio.get_running_loop().time
        position, sent_at = self._after, clock()
        while not wakeup.closed:
            wakeup.clear()  # an append from now on wakes the wait below
            read_at = clock()
            frames = await self._read(position)
            position = frames.end
            if frames.body:
                yield frames.body
                sent_at = clock()
            if frames.full:
                continue
            if not await wakeup.wait(max(0.0, sent_at + self._heartbeat - clock())):
                yield HEARTBEAT
                sent_at = clock()
            await asyncio.sleep(max(0.0, read_at + PACE - clock()))


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
