"""Many callers' look-ups of single rows, answered by one query per round.

Asked one by one, a look-up is a worker-thread hop and a round trip per request
(the Lambda readings endpoints ask for the head of the log before they read).
`BatchedLookup` gathers the keys that callers on an event loop ask for while a
query is out, and asks for all of them in the next query: one hop and one round
trip per round, however many requests are waiting. At low load a round holds one
key and costs what a single look-up did.

A caller never joins a query already out: its answer comes from a query that
started after it asked, so it sees every write acknowledged before it asked
(read-your-writes holds as for a direct query).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Collection, Hashable, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[Collection[K]], Mapping[K, V]]
"""Blocking: the rows of those keys that exist."""


class _Round(Generic[K, V]):
    """The callers of one event loop waiting for the next query, and whether one is out."""

    def __init__(self) -> None:
        self.waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self.out = False
        self.task: asyncio.Task[Any] | None = None  # held, so that it is not collected


class BatchedLookup(Generic[K, V]):
    def __init__(self, fetch: Fetch[K, V]) -> None:
        self._fetch = fetch
        self._rounds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Round[K, V]] = (
            weakref.WeakKeyDictionary()
        )

    async def get(self, key: K) -> V | None:
        """The row of this key as a query started after this call finds it; None if absent."""
        loop = asyncio.get_running_loop()
        state = self._rounds.get(loop)
        if state is None:
            state = self._rounds[loop] = _Round()
        future: asyncio.Future[V | None] = loop.create_future()
        state.waiting.setdefault(key, []).append(future)
        if not state.out:
            state.out = True
            # Let the callers of this loop turn join before the query goes out.
            loop.call_soon(self._start, loop, state)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop, state: _Round[K, V]) -> None:
        state.task = loop.create_task(self._serve(state))

    async def _serve(self, state: _Round[K, V]) -> None:
        try:
            while state.waiting:
                waiting, state.waiting = state.waiting, {}
                try:
                    found = await asyncio.to_thread(self._fetch, list(waiting))
                except Exception as error:
                    _answer(waiting, {}, error)
                else:
                    _answer(waiting, found, None)
        finally:
            state.out = False
            state.task = None


def _answer(
    waiting: dict[K, list[asyncio.Future[V | None]]],
    found: Mapping[K, V],
    failure: Exception | None,
) -> None:
    for key, futures in waiting.items():
        for future in futures:
            if future.done():  # its caller went away
                continue
            if failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(found.get(key))
