"""The one road every reading takes into the log: many readings, one transaction.

Every source (REST, MQTT, bulk) hands its readings to `ReadingIngest.submit` (or
`enqueue`, from a thread). A worker thread groups what arrives while it is
writing the previous append (a few milliseconds), up to a few thousand readings,
into the next append (`iotledger.adapters.postgres.reading_log`), and answers each caller
only after that append has committed: nothing is acknowledged that is not
stored, and under load one commit serves thousands of readings. No timer holds a
lone reading back: an idle ingest appends it at once (`linger` can make the
worker wait that long after the first arrival, for fewer, larger appends). If
the append fails, every caller of that batch gets the error.

A caller may name whose devices it may write to (a `DeviceAccess`): before the append,
one query on the worker's connection reads the owners of every device such callers
named, and a caller whose readings name a device it may not see (or none that exists)
gets NotFound, its readings left out. The query starts after the caller submitted, so it
sees every device change acknowledged before; and a request waits for one hand-over to
the worker instead of two (a look-up of its own, then the append).

Callers on an event loop are woken together, with one wake-up per loop and
batch: per-caller wake-ups cost more than the append itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder

from iotledger.adapters.observability.metrics import APPEND_SECONDS, INGEST_BATCH, READINGS_INGESTED
from iotledger.adapters.postgres.reading_log import Positions, ReadingLog, stored_state
from iotledger.application.clock import now
from iotledger.application.readings import RecordReading
from iotledger.domain.devices import DeviceAccess
from iotledger.domain.errors import DeviceNotFound, Unavailable

log = logging.getLogger(__name__)


class Outcome(msgspec.Struct, frozen=True):
    """What became of one submitted reading."""

    id: UUID
    new: bool
    """False for a redelivery (or a repeat in the same batch): stored once, earlier."""
    position: int
    """The log position of the reading's `Recorded` event (the original's, if a repeat)."""


Answer = list[Outcome] | BaseException
Waiter = Future[list[Outcome]] | asyncio.Future[list[Outcome]]


Owners = Callable[[psycopg.Connection[Any], Collection[UUID]], Mapping[UUID, UUID | None]]
"""Of each of these devices that exists, its owner (None: the shared fleet's)."""


class _Submission:
    """One caller's readings (id, state bytes), and how to wake the caller."""

    __slots__ = ("access", "arrived", "devices", "loop", "rows", "source", "waiter")

    def __init__(
        self,
        rows: list[tuple[UUID, bytes]],
        loop: asyncio.AbstractEventLoop | None,
        waiter: Waiter,
        access: DeviceAccess | None = None,
        devices: frozenset[UUID] = frozenset(),
        *,
        source: str = "other",
    ) -> None:
        self.rows = rows
        self.source = source
        """Where the readings came from (`rest`, `mqtt`): a label of the metrics."""
        self.loop = loop
        self.waiter = waiter
        self.access = access
        self.devices = devices
        """The devices its readings name, when `access` must allow each."""
        self.arrived = time.monotonic()

    def refused(self, owners: Mapping[UUID, UUID | None]) -> bool:
        """Whether it names a device that does not exist, or one its caller may not see."""
        if self.access is None:
            return False
        return not all(d in owners and self.access.allows(owners[d], d) for d in self.devices)


class ReadingIngest:
    """Batches readings from any thread or event loop into one append per few ms."""

    def __init__(
        self,
        conninfo: str,
        log_: ReadingLog,
        *,
        max_batch: int = 5000,
        linger: float = 0.0,
        owners: Owners | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._log = log_
        self._owners = owners
        self._max_batch = max_batch
        self._linger = linger
        self._pending: deque[_Submission] = deque()
        self._pending_rows = 0
        self._cond = threading.Condition()
        self._state = "new"  # new -> running -> stopped
        self._thread = threading.Thread(target=self._work, name="reading-ingest", daemon=True)

    @classmethod
    def for_recorder(
        cls,
        recorder: PostgresApplicationRecorder,
        conninfo: str,
        *,
        lock_timeout: float | None = None,
        **options: Any,
    ) -> ReadingIngest:
        """An ingest into this recorder's log, waiting for its lock as long as it does."""
        return cls(conninfo, ReadingLog.of(recorder, lock_timeout), **options)

    async def submit(
        self,
        readings: Sequence[RecordReading],
        access: DeviceAccess | None = None,
        *,
        source: str = "other",
    ) -> list[Outcome]:
        """Append these readings; answers once they are committed, one outcome each.
        With `access`, NotFound unless every reading's device exists and `access` allows it."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[Outcome]] = loop.create_future()
        self._queue(readings, loop, waiter, access, source)
        return await waiter

    def enqueue(
        self, readings: Sequence[RecordReading], *, source: str = "other"
    ) -> Future[list[Outcome]]:
        """The same as `submit`, for a thread: wait on the future's `result()`."""
        waiter: Future[list[Outcome]] = Future()
        self._queue(readings, None, waiter, source=source)
        return waiter

    def stop(self, timeout: float = 10.0) -> None:
        """Append what is pending, then stop; later submissions fail with Unavailable."""
        with self._cond:
            started = self._state == "running"
            self._state = "stopped"
            self._cond.notify()
        if started:
            self._thread.join(timeout)

    def _queue(
        self,
        readings: Sequence[RecordReading],
        loop: asyncio.AbstractEventLoop | None,
        waiter: Waiter,
        access: DeviceAccess | None = None,
        source: str = "other",
    ) -> None:
        received_at = now()
        rows = [(r.reading_id, stored_state(r, received_at)) for r in readings]
        if not rows:
            waiter.set_result([])
            return
        if access is not None and self._owners is None:
            raise TypeError("this ingest was made without `owners`: it cannot check access")
        devices = frozenset(r.device_id for r in readings) if access is not None else frozenset()
        submission = _Submission(rows, loop, waiter, access, devices, source=source)
        with self._cond:
            if self._state == "stopped":
                raise Unavailable("the reading ingest is stopped")
            if self._state == "new":
                self._state = "running"
                self._thread.start()
            self._pending.append(submission)
            self._pending_rows += len(rows)
            if len(self._pending) == 1 or self._pending_rows >= self._max_batch:
                self._cond.notify()

    def _take(self) -> list[_Submission] | None:
        """The next batch: what is waiting (and what arrives within `linger` of the oldest),
        up to `max_batch`."""
        with self._cond:
            while not self._pending:
                if self._state == "stopped":
                    return None
                self._cond.wait()
            deadline = self._pending[0].arrived + self._linger
            while self._pending_rows < self._max_batch and self._state != "stopped":
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch: list[_Submission] = []
            rows = 0
            while self._pending and (
                not batch or rows + len(self._pending[0].rows) <= self._max_batch
            ):
                batch.append(self._pending.popleft())
                rows += len(batch[-1].rows)
            self._pending_rows -= rows
            return batch

    def _work(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        try:
            while (batch := self._take()) is not None:
                conn = self._append(conn, batch)
        finally:
            if conn is not None:
                conn.close()

    def _append(
        self, conn: psycopg.Connection[Any] | None, batch: list[_Submission]
    ) -> psycopg.Connection[Any] | None:
        """Append one batch and answer its callers; the connection to use next time."""
        try:
            if conn is None or conn.closed:
                conn = self._connect()
            batch = self._admitted(conn, batch)
            distinct: dict[UUID, bytes] = {}
            for submission in batch:
                for reading_id, state in submission.rows:
                    distinct.setdefault(reading_id, state)
            inserted, originals = self._timed_append(conn, distinct) if distinct else ({}, {})
        except Exception as error:
            log.exception("appending %d submissions of readings failed", len(batch))
            failure = Unavailable("the readings could not be stored; nothing was acknowledged")
            failure.__cause__ = error
            _settle(batch, [failure] * len(batch))
            if conn is not None and conn.broken:
                conn.close()
            return None if conn is None or conn.closed else conn
        answers = _outcomes(batch, inserted, originals)
        _count_new(batch, answers)  # before the callers wake: what they acknowledge is counted
        _settle(batch, answers)
        return conn

    def _timed_append(
        self, conn: psycopg.Connection[Any], rows: dict[UUID, bytes]
    ) -> tuple[Positions, Positions]:
        started = time.perf_counter()
        appended = self._log.append(conn, rows)
        APPEND_SECONDS.observe(time.perf_counter() - started)
        INGEST_BATCH.observe(len(rows))
        return appended

    def _admitted(
        self, conn: psycopg.Connection[Any], batch: list[_Submission]
    ) -> list[_Submission]:
        """The submissions whose callers may write their readings; the others answered
        NotFound (as if the device did not exist), one query for the whole batch."""
        named = set().union(*(s.devices for s in batch))
        if not named or self._owners is None:
            return batch
        owners = self._owners(conn, named)
        admitted: list[_Submission] = []
        refused: list[_Submission] = []
        for submission in batch:
            (refused if submission.refused(owners) else admitted).append(submission)
        _settle(refused, [DeviceNotFound() for _ in refused])
        return admitted

    def _connect(self) -> psycopg.Connection[Any]:
        """Its timeouts and name come with `conninfo` (`adapters.postgres.connections`)."""
        return psycopg.connect(self._conninfo, autocommit=True)


def _outcomes(batch: list[_Submission], inserted: Positions, originals: Positions) -> list[Answer]:
    """Each caller's outcomes: the first mention of a new reading is the new one."""
    claimed: set[UUID] = set()
    answers: list[Answer] = []
    for submission in batch:
        answer = []
        for reading_id, _ in submission.rows:
            position = inserted.get(reading_id)
            new = position is not None and reading_id not in claimed
            if position is None:
                position = originals[reading_id]
            else:
                claimed.add(reading_id)
            answer.append(Outcome(reading_id, new, position))
        answers.append(answer)
    return answers


def _count_new(batch: list[_Submission], answers: list[Answer]) -> None:
    """The readings stored for the first time, added per source once per append."""
    new: Counter[str] = Counter()
    for submission, answer in zip(batch, answers, strict=True):
        if not isinstance(answer, BaseException):
            new[submission.source] += sum(outcome.new for outcome in answer)
    for source, count in new.items():
        READINGS_INGESTED.labels(source).inc(count)


def _settle(batch: list[_Submission], answers: list[Answer]) -> None:
    """Wake every caller: threads at once, each event loop's callers in one go."""
    per_loop: defaultdict[asyncio.AbstractEventLoop, list[tuple[Waiter, Answer]]]
    per_loop = defaultdict(list)
    for submission, answer in zip(batch, answers, strict=True):
        if submission.loop is None:
            _resolve([(submission.waiter, answer)])
        else:
            per_loop[submission.loop].append((submission.waiter, answer))
    for loop, settled in per_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop has no one left waiting
            loop.call_soon_threadsafe(_resolve, settled)


def _resolve(settled: list[tuple[Waiter, Answer]]) -> None:
    for waiter, answer in settled:
        if waiter.done():  # the caller gave up waiting; the readings are stored all the same
            continue
        if isinstance(answer, BaseException):
            waiter.set_exception(answer)
        else:
            waiter.set_result(answer)
