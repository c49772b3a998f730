"""How far each projection has got, seen from any process; readers wait on it.

A thread LISTENs on `iotledger_projections` (each view notifies on commit) and
re-reads the tracking table every second as a safety net, so a reply can wait
for its own write to become visible even when projections run elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any, NamedTuple

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from iotledger.adapters.postgres.views.base import PROJECTIONS_CHANNEL, tracking_positions

log = logging.getLogger(__name__)


class ProjectionWatch:
    def __init__(self, pool: ConnectionPool[Any], conninfo: str, timeout: float = 5.0) -> None:
        self._pool = pool
        self._conninfo = conninfo
        self._timeout = timeout  # IOTLEDGER_READ_WAIT_TIMEOUT
        self._positions: dict[str, int] = {}
        self._waiters: list[_Waiter] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="projection-watch", daemon=True)

    def start(self) -> None:
        """Once per process, by whichever part needs it first (the API, dynsec's policy)."""
        if self._thread.ident is None:
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def position(self, name: str) -> int:
        return self._positions.get(name, 0)

    def reached(self, position: int, names: tuple[str, ...]) -> bool:
        return all(self._positions.get(name, 0) >= position for name in names)

    async def wait(self, position: int, *names: str) -> bool:
        """Wait until every named projection has applied `position`; False on timeout
        (`timeout` seconds; 0: answer at once whether they have).

        Waiters sleep on a future that the watch thread settles when a notification
        brings their position: no polling, however many requests wait at once.
        """
        if self.reached(position, names):
            return True
        if self._timeout <= 0:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(position, names, future)
        with self._lock:
            self._waiters.append(waiter)
        if self.reached(position, names):  # a notification may have come in between
            _settle(future)
        try:
            await asyncio.wait_for(future, self._timeout)
        except TimeoutError:
            log.warning("read-your-writes wait timed out at %d for %s", position, names)
            return False
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return True

    def _watch(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception:
                log.exception("projection watch lost its connection; reconnecting")
                self._stopping.wait(0.5)

    def _listen(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(PROJECTIONS_CHANNEL)))
            while not self._stopping.is_set():
                self._merge(tracking_positions(self._pool))
                for notify in conn.notifies(timeout=1.0):
                    name, _, position = notify.payload.rpartition(":")
                    self._merge({name: int(position)})
                    if self._stopping.is_set():
                        return

    def _merge(self, positions: dict[str, int]) -> None:
        for name, position in positions.items():
            if position > self._positions.get(name, 0):
                self._positions[name] = position
        with self._lock:
            ready = [w for w in self._waiters if self.reached(w.position, w.names)]
            for waiter in ready:
                self._waiters.remove(waiter)
        for waiter in ready:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                waiter.future.get_loop().call_soon_threadsafe(_settle, waiter.future)


class _Waiter(NamedTuple):
    position: int
    names: tuple[str, ...]
    future: asyncio.Future[None]


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
