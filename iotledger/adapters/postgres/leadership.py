"""Work that one process at a time must do (sending commands, checking devices).

Like the projection runners (see `iotledger.adapters.postgres.feed`), the leader holds a
PostgreSQL advisory lock on a connection of its own; the other processes stand
by. If the leader dies, its connection and so its lock go with it and a
standby takes over.

A leader whose backend is terminated (or whose database restarts) has lost its
lock at once, and a standby may take over within `standby_wait`. So the leader
does not trust its rounds to notice: a watchdog asks the lock's connection every
`CHECK_EVERY` seconds, and when it fails or stays silent past `CHECK_TIMEOUT` (the
network gone), the round at work is cancelled on the spot (a device check of a
large fleet can run for tens of seconds) and nothing more is sent until the lock
is held again. With the network gone, the server keeps the old session and its
lock until it notices (its own TCP keepalive settings): nobody leads meanwhile.
A write already handed to a worker thread (recording a dispatch that was sent)
may still complete. A new leader waits `TAKEOVER_GRACE`, the longest a lost
leader takes to notice, before its first round, so two leaders never work at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from iotledger.adapters.postgres.feed import lock_key

log = logging.getLogger(__name__)

Round = Callable[[], Awaitable[None]]
CHECK_EVERY = 0.5
CHECK_TIMEOUT = 1.0
TAKEOVER_GRACE = CHECK_EVERY + CHECK_TIMEOUT


class LostLock(Exception):
    """The lock's connection stopped answering: the lock may belong to another process now."""


async def lead(
    conninfo: str, name: str, work: Round, every: float, *, standby_wait: float = 2.0
) -> None:
    """Run `work` every `every` seconds while this process holds the lock `name`; forever."""
    backoff = 0.5
    while True:
        try:
            await _lead_once(conninfo, name, work, every, standby_wait)
        except LostLock as lost:
            log.warning("%s stopped: %s; starting again in %.1fs", name, lost, backoff)
            await asyncio.sleep(backoff)
        except Exception:
            log.exception("%s failed; starting again in %.1fs", name, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
        else:
            backoff = 0.5


async def _lead_once(
    conninfo: str, name: str, work: Round, every: float, standby_wait: float
) -> None:
    async with await _connect(conninfo) as conn:
        while not await _try_lock(conn, name):
            await asyncio.sleep(standby_wait)
        log.info("%s runs in this process", name)
        await asyncio.sleep(TAKEOVER_GRACE)
        try:
            await _lead_while_held(conn, work, every)
        except LostLock:
            await conn.close()  # at once: a hung connection is not waited for
            raise


async def _connect(conninfo: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(
        conninfo,
        autocommit=True,
        connect_timeout=10,
        # With the network gone, the kernel fails the socket within seconds (while a
        # probe waits: tcp_user_timeout; while idle: keepalives): nothing hangs behind it.
        tcp_user_timeout=3000,
        keepalives_idle=5,
        keepalives_interval=1,
        keepalives_count=3,
    )


async def _lead_while_held(conn: psycopg.AsyncConnection[Any], work: Round, every: float) -> None:
    """Rounds of `work` until one fails (raised here) or the lock's connection does (LostLock)."""
    rounds = asyncio.create_task(_rounds(work, every))
    try:
        while True:
            done, _ = await asyncio.wait({rounds}, timeout=CHECK_EVERY)
            if done:
                return rounds.result()
            if not await _answers(conn):
                raise LostLock("the connection holding the lock stopped answering")
    finally:
        rounds.cancel()  # before anything else runs: the round sends nothing more
        await asyncio.gather(rounds, return_exceptions=True)


async def _rounds(work: Round, every: float) -> None:
    while True:
        await work()
        await asyncio.sleep(every)


async def _answers(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the connection answers within CHECK_TIMEOUT; a hung probe is left behind."""
    probe = asyncio.create_task(conn.execute("SELECT 1"))
    done, _ = await asyncio.wait({probe}, timeout=CHECK_TIMEOUT)
    if not done:
        probe.cancel()
        return False
    return probe.exception() is None


async def _try_lock(conn: psycopg.AsyncConnection[Any], name: str) -> bool:
    cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),))
    row = await cursor.fetchone()
    return bool(row and row[0])
