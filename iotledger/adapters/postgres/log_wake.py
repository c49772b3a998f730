"""One LISTEN per process on the log's channels, fanned out to every live stream.

A stream (`GET .../stream`) reads the log itself from its own position, so it never
needs what a notification says, only that the log may have grown: one thread here
listens on the channel of ordinary saves and on the channel of new readings, and
wakes every stream of the process at each notification, instead of each stream
holding a database connection of its own. Streams also look again after every
quiet heartbeat, so a notification lost while this thread reconnects only delays
them. `close` wakes every stream for the last time: they end, and the server can stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)


class Wakeup:
    """What one stream waits on: set when the log may have grown, or when it must end."""

    def __init__(self, wake: LogWake) -> None:
        self.loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._wake = wake

    @property
    def closed(self) -> bool:
        return self._wake.closed

    def clear(self) -> None:
        """Before reading the log: an append after this moment wakes the next `wait`."""
        self._event.clear()

    async def wait(self, timeout: float) -> bool:
        """True when woken, False after `timeout` seconds without a wake-up."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def set(self) -> None:
        self._event.set()


class LogWake:
    def __init__(self, conninfo: str, channels: tuple[str, ...]) -> None:
        self._conninfo = conninfo
        self._channels = channels
        self._wakeups: set[Wakeup] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def closed(self) -> bool:
        return self._stopping.is_set()

    @contextmanager
    def subscription(self) -> Iterator[Wakeup]:
        """A wake-up for the running loop's stream, for as long as it lasts (the listening
        thread starts with the first)."""
        wakeup = Wakeup(self)
        with self._lock:
            self._start()
            self._wakeups.add(wakeup)
        try:
            yield wakeup
        finally:
            with self._lock:
                self._wakeups.discard(wakeup)

    def close(self) -> None:
        """Every stream ends; nothing subscribes any more. It does not wait: called on the
        event loop at shutdown, and the listening thread notices within a second."""
        self._stopping.set()
        self._wake_all()

    def _start(self) -> None:
        if self._thread is None and not self.closed:
            self._thread = threading.Thread(target=self._run, name="log-wake", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception:
                log.exception("stream wake-up lost its connection; reconnecting")
                self._stopping.wait(0.5)

    def _listen(self) -> None:
        with psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=10, application_name="iotledger-wake"
        ) as conn:
            for channel in self._channels:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self._wake_all()  # whatever was appended while we were not listening
            while not self._stopping.is_set():
                if any(True for _ in conn.notifies(timeout=1.0, stop_after=1)):
                    self._wake_all()

    def _wake_all(self) -> None:
        """One thread-safe call per event loop, however many streams it runs."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Wakeup]] = {}
        with self._lock:
            for wakeup in self._wakeups:
                by_loop.setdefault(wakeup.loop, []).append(wakeup)
        for loop, wakeups in by_loop.items():
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                loop.call_soon_threadsafe(_set_all, wakeups)


def _set_all(wakeups: list[Wakeup]) -> None:
    for wakeup in wakeups:
        wakeup.set()
