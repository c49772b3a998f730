"""Whether this process reaches PostgreSQL: a cheap, cached and bounded answer for `/health`.

A load balancer asks every second or more often, from every instance of it: the
answer is kept for `ttl` (about a second), and at most one probe is in flight, so
the database sees one `SELECT 1` per second per process whoever asks. The probe asks
on a connection of the process's pool (what requests use: a server that refuses new
connections while the pool's work is still reachable for us), in a thread, and the
caller waits at most `timeout`: a database that hangs (stopped, partitioned) answers
"down" in bounded time, while the probe that hangs stays the only one until it returns.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout


class DatabaseProbe:
    def __init__(
        self, pool: ConnectionPool[Any], *, ttl: float = 1.0, timeout: float = 2.0
    ) -> None:
        self._pool = pool
        self._ttl = ttl
        self._timeout = timeout
        self._answer = False
        self._answered_at = -float("inf")
        self._probe: asyncio.Future[bool] | None = None
        self._probe_started = 0.0

    async def reachable(self) -> bool:
        """True when PostgreSQL answered a `SELECT 1` within the last `ttl` seconds."""
        now = time.monotonic()
        if now - self._answered_at < self._ttl:
            return self._answer
        if self._probe is None or self._probe.get_loop() is not asyncio.get_running_loop():
            self._probe = asyncio.ensure_future(asyncio.to_thread(self._select_one))
            self._probe.add_done_callback(self._settle)
            self._probe_started = now
        remaining = self._probe_started + self._timeout - now
        if remaining <= 0:
            return False  # the probe in flight hangs: down, at once
        try:
            return await asyncio.wait_for(asyncio.shield(self._probe), remaining)
        except TimeoutError:
            return False

    def _settle(self, probe: asyncio.Future[bool]) -> None:
        self._probe = None
        self._answer = not probe.cancelled() and not probe.exception() and probe.result()
        self._answered_at = time.monotonic()

    def _select_one(self) -> bool:
        try:
            with self._pool.connection(timeout=self._timeout) as conn:
                conn.execute("SELECT 1")
        except (psycopg.Error, PoolTimeout):
            return False
        return True
