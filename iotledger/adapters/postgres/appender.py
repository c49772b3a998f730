"""The production `ReadingAppender`: many callers' readings, one binary COPY.

Every source (REST, MQTT, bulk) hands its readings to `append` (through
`RecordingService`), or to `enqueue` from a thread. A worker thread groups what
arrives while it is writing the previous append (a few milliseconds), up to a few
thousand readings, into the next append (`iotledger.adapters.postgres.reading_log`),
and answers each caller only after that append has committed: nothing is acknowledged
that is not stored, and under load one commit serves thousands of readings. No timer
holds a lone reading back: an idle appender appends it at once (`linger` can make the
worker wait that long after the first arrival, for fewer, larger appends). If the
append fails, every caller of that batch gets the error.

A caller may name whose devices it may write to (a `DeviceAccess`): before the append,
the worker asks its `DeviceOwners` (one query on its own connection) for the owners of
every device such callers named, and a caller for whom `readings_visible` does not hold
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
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder

from iotledger.adapters.observability.metrics import APPEND_SECONDS, INGEST_BATCH, READINGS_INGESTED
from iotledger.adapters.postgres.reading_log import Positions, ReadingLog, stored_state
from iotledger.application.clock import now
from iotledger.application.readings import AppendReadings, DeviceOwners, Outcome
from iotledger.domain.errors import DeviceNotFound, Unavailable
from iotledger.domain.readings import Owners, readings_visible

log = logging.getLogger(__name__)

Answer = list[Outcome] | BaseException
Waiter = Future[list[Outcome]] | asyncio.Future[list[Outcome]]

OwnersOn = Callable[[psycopg.Connection[Any]], DeviceOwners]
"""The `DeviceOwners` that answers on the worker's own connection."""


class _Submission:
    """One caller's readings (id, state bytes), whose devices it may name, and how to wake it."""

    __slots__ = ("access", "arrived", "devices", "loop", "rows", "source", "waiter")

    def __init__(
        self,
        cmd: AppendReadings,
        rows: list[tuple[UUID, bytes]],
        loop: asyncio.AbstractEventLoop | None,
        waiter: Waiter,
    ) -> None:
        self.rows = rows
        self.source = cmd.source
        self.loop = loop
        self.waiter = waiter
        self.access = cmd.access
        named = () if cmd.access is None else cmd.readings
        self.devices = frozenset(r.device_id for r in named)
        """The devices its readings name, when `access` must allow each."""
        self.arrived = time.monotonic()

    def refused(self, owners: Owners) -> bool:
        """Whether it names a device that does not exist, or one its caller may not see."""
        return self.access is not None and not readings_visible(self.access, self.devices, owners)


class CopyReadingAppender:
    """Batches readings from any thread or event loop into one append per few ms."""

    def __init__(
        self,
        conninfo: str,
        log_: ReadingLog,
        *,
        max_batch: int = 5000,
        linger: float = 0.0,
        owners: OwnersOn | None = None,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._conninfo = conninfo
        self._log = log_
        self._owners = owners
        self._max_batch = max_batch
        self._linger = linger
        self._clock = clock
        self._pending: deque[_Submission] = deque()
        self._pending_rows = 0
        self._cond = threading.Condition()
        self._state = "new"  # new -> running -> stopped
        self._thread = threading.Thread(target=self._work, name="reading-appender", daemon=True)

    @classmethod
    def for_recorder(
        cls,
        recorder: PostgresApplicationRecorder,
        conninfo: str,
        *,
        lock_timeout: float | None = None,
        **options: Any,
    ) -> CopyReadingAppender:
        """An appender to this recorder's log, waiting for its lock as long as it does."""
        return cls(conninfo, ReadingLog.of(recorder, lock_timeout), **options)

    async def append(self, cmd: AppendReadings) -> list[Outcome]:
        """See `ReadingAppender`."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[Outcome]] = loop.create_future()
        self._queue(cmd, loop, waiter)
        return await waiter

    def enqueue(self, cmd: AppendReadings) -> Future[list[Outcome]]:
        """The same as `append`, for a thread: wait on the future's `result()`."""
        waiter: Future[list[Outcome]] = Future()
        self._queue(cmd, None, waiter)
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
        self, cmd: AppendReadings, loop: asyncio.AbstractEventLoop | None, waiter: Waiter
    ) -> None:
        received_at = self._clock()
        rows = [(r.reading_id, stored_state(r, received_at)) for r in cmd.readings]
        if not rows:
            waiter.set_result([])
            return
        if cmd.access is not None and self._owners is None:
            raise TypeError("this appender was made without `owners`: it cannot check access")
        submission = _Submission(cmd, rows, loop, waiter)
        with self._cond:
            if self._state == "stopped":
                raise Unavailable("the reading appender is stopped")
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
        owners = self._owners(conn).owners(named)
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
            answer.append(Outcome(reading_id, position, new))
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
