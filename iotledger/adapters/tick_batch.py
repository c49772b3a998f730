"""Many concurrent callers, one call: what arrives within one turn of the event loop goes together.

The MQTT adapter handles hundreds of messages at once (one task each); handing
each reading to the ingest on its own costs a thread hand-off per reading.
`TickBatch` gathers what the tasks of one loop turn submit and makes one call
for all of it; every caller learns that call's outcome (an exception fails
them all, and each retries on its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class TickBatch(Generic[T]):
    def __init__(self, sink: Callable[[Sequence[T]], Awaitable[Any]]) -> None:
        self._sink = sink
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> None:
        """Return once the call that carried `item` has succeeded."""
        loop = asyncio.get_running_loop()
        if not self._items:
            loop.call_soon(self._flush)
        waiter = loop.create_future()
        self._items.append(item)
        self._waiters.append(waiter)
        await waiter

    def _flush(self) -> None:
        items, waiters = self._items, self._waiters
        self._items, self._waiters = [], []
        task = asyncio.ensure_future(self._send(items, waiters))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, items: list[T], waiters: list[asyncio.Future[None]]) -> None:
        try:
            await self._sink(items)
        except Exception as error:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(error)
        except BaseException:
            for waiter in waiters:
                waiter.cancel()
            raise
        else:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
