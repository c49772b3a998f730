"""What handlers receive: the services, and a way to run blocking work off the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


async def off_loop(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """eventsourcing and argon2 block: run them in a worker thread, never on the loop."""
    return await asyncio.to_thread(func, *args, **kwargs)
