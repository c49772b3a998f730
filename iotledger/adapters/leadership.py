"""Work that one process at a time must do (sending commands, checking devices).

Like the projection runners (see `iotledger.adapters.feed`), the leader holds a
PostgreSQL advisory lock on a connection of its own; the other processes stand
by. If the leader dies, its connection and so its lock go with it and a
standby takes over. Each round first proves the lock is still held (the
connection still answers), so a leader cut off from the database stops
leading instead of working beside its successor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from iotledger.adapters.feed import lock_key

log = logging.getLogger(__name__)

Round = Callable[[], Awaitable[None]]


async def lead(
    conninfo: str, name: str, work: Round, every: float, *, standby_wait: float = 2.0
) -> None:
    """Run `work` every `every` seconds while this process holds the lock `name`; forever."""
    backoff = 0.5
    while True:
        try:
            await _lead_once(conninfo, name, work, every, standby_wait)
        except Exception:
            log.exception("%s failed; starting again in %.1fs", name, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
        else:
            backoff = 0.5


async def _lead_once(
    conninfo: str, name: str, work: Round, every: float, standby_wait: float
) -> None:
    async with await psycopg.AsyncConnection.connect(
        conninfo, autocommit=True, connect_timeout=10, application_name=f"iotledger-{name}"
    ) as conn:
        while not await _try_lock(conn, name):
            await asyncio.sleep(standby_wait)
        log.info("%s runs in this process", name)
        while True:
            await conn.execute("SELECT 1")
            await work()
            await asyncio.sleep(every)


async def _try_lock(conn: psycopg.AsyncConnection[Any], name: str) -> bool:
    cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),))
    row = await cursor.fetchone()
    return bool(row and row[0])
