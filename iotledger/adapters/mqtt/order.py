"""Arrival order, kept where it matters: readings side by side, a discovery alone.

The link hands batches over as it reads them, each handled in a task of its
own, so that while one batch's append commits the next one's readings join the
following append. Readings do not care about each other's order (each is
stored once by its id), but a discovery creates the sensors that the readings
published right after it name: looked up before it committed, they were
unknown and dropped (a device's boot sequence lost its first readings in 2 of
3 tries). So a discovery starts only once everything that arrived before it is
done, and whatever arrives after it starts only once it is done.

Work is queued in arrival order because the handler queues each stage of its
batch before its first `await`, and the link starts batch tasks in the order it
read them off the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any

Stage = Coroutine[Any, Any, None]


class ArrivalOrder:
    """Stages that run side by side, and barriers that run between them in arrival order."""

    def __init__(self) -> None:
        self._barrier: asyncio.Task[None] | None = None
        self._since: set[asyncio.Task[None]] = set()

    def alongside(self, stage: Stage) -> asyncio.Task[None]:
        """`stage` once the last barrier queued is done, side by side with other such stages."""
        task = asyncio.create_task(_after((self._barrier,), stage))
        self._since.add(task)
        task.add_done_callback(self._since.discard)
        return task

    def alone(self, stage: Stage) -> asyncio.Task[None]:
        """`stage` once everything queued before it is done; what is queued next waits for it."""
        before = (self._barrier, *self._since)
        self._since = set()
        self._barrier = asyncio.create_task(_after(before, stage))
        return self._barrier


async def _after(before: Iterable[asyncio.Task[None] | None], stage: Stage) -> None:
    pending = [task for task in before if task is not None and not task.done()]
    if pending:
        await asyncio.wait(pending)
    await stage
