"""Runs one projection forever, and brings it back when anything breaks.

The runner reads the log after its view's position in batches, applies each
batch in one transaction, and sleeps on the feed until new events arrive. Any
error (a killed LISTEN connection, a restarted database) ends the current
attempt; the supervisor loop starts a new one from the position the view
committed, so nothing is lost and nothing is applied twice.

An error that is not `transient` is pinned on one event: the runner applies the
events before it, records the failure at that event's position, and after
`stop_after` attempts at the same event stops there until an operator resumes it
or skips that event (`iotledger.projections.failures`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from iotledger.projections.base import Event, LostRace, Positioned, Projection
from iotledger.projections.failures import EventFailure, Failures, ProjectionHealth, describe

log = logging.getLogger(__name__)


class EventFeed(Protocol):
    """The log as a projection sees it."""

    def head(self) -> int | None:
        """The newest committed position of the whole log."""

    def read(
        self, after: int | None, upto: int, topics: Sequence[str], limit: int
    ) -> list[tuple[int, Event]]:
        """Events of these topics after `after` up to `upto`, oldest first."""

    def wait(self, timeout: float) -> None:
        """Block until new events may have been appended, or the timeout passes."""

    def hold(self, name: str) -> bool:
        """Try to become the only runner of projection `name`; True when this one is."""


FeedFactory = Callable[[Sequence[str]], AbstractContextManager[EventFeed]]
"""Opens a feed that wakes for appends of events of these topics."""

Transient = Callable[[BaseException], bool]
"""Whether an error passes by itself (a lost connection): retried, never pinned on an event."""


def _never(_error: BaseException) -> bool:
    return False


def _passes(error: BaseException, transient: Transient) -> bool:
    """Transient, or a race with another runner (no event's fault either)."""
    return isinstance(error, LostRace) or transient(error)


class ProjectionRunner:
    """A supervised thread that keeps one projection up to date."""

    def __init__(
        self,
        projection: Projection[Any],
        feed: FeedFactory,
        *,
        batch_size: int = 1000,
        idle_wait: float = 0.5,
        on_failure: Callable[[], None] = lambda: None,
        transient: Transient = _never,
        stop_after: int = 3,
        poll: float = 1.0,
    ) -> None:
        self.projection = projection
        self.name = projection.name
        self._feed = feed
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=f"projection-{self.name}")
        self._transient = transient
        self._poll = poll
        self.position: int | None = None
        self.restarts = 0
        self.failures = Failures(self.name, projection.view, stop_after)
        self._on_failure = on_failure
        self._skipped: frozenset[int] = frozenset()
        self._last_batch = 0.0
        self.active = threading.Event()  # set while this runner is the one at work

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def health(self) -> ProjectionHealth:
        """Its state, position and failures now (what `/ready` and the metrics show)."""
        return self.failures.health(self.name, self.position, self.active.is_set())

    def _supervise(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                self._run()
            except EventFailure as failure:
                self.restarts += 1
                self.failures.on_event(failure)
                self._on_failure()
            except Exception as error:
                self.restarts += 1
                self.failures.on_transient(error)
                self._on_failure()
                log.exception("projection %s failed; restarting in %.1fs", self.name, backoff)
            else:
                backoff = 0.1
                continue
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    def _run(self) -> None:
        with self._feed(self.projection.topics) as feed:
            while not feed.hold(self.name):
                log.info("projection %s runs elsewhere; standing by", self.name)
                if self._stopping.wait(self._idle_wait * 4):
                    return
            self.active.set()
            try:
                if not self.failures.wait_while_stopped(self._stopping, self._poll):
                    return
                self.position = self.projection.view.position()
                self.prepare()
                while not self._stopping.is_set():
                    more = self.catch_up(feed)
                    self.failures.passed(self.position)
                    if not more:
                        feed.wait(self._idle_wait)
                        self._pace()
            finally:
                self.active.clear()

    def prepare(self) -> None:
        """Learn which events operators ordered left out (before any `catch_up`)."""
        self._skipped = self.projection.view.skipped()

    def _pace(self) -> None:
        """While events keep coming, batches start at least `pace` seconds apart: the
        events of that time are applied together, for much less work per event. After
        a quiet spell the first event is applied at once."""
        remaining = self._last_batch + self.projection.pace - time.monotonic()
        if remaining > 0:
            self._stopping.wait(remaining)

    def catch_up(self, feed: EventFeed, upto: int | None = None) -> bool:
        """Apply what the log holds now (up to `upto`); True if there may be more already.
        EventFailure if an event cannot be read or applied: those before it are applied."""
        head = feed.head()
        if head is not None and upto is not None:
            head = min(head, upto)
        if head is None or (self.position is not None and head <= self.position):
            return False
        self._last_batch = time.monotonic()
        try:
            batch = feed.read(self.position, head, self.projection.topics, self._batch_size)
        except EventFailure as failure:
            while self.catch_up(feed, failure.position - 1):
                pass
            raise
        more = len(batch) == self._batch_size
        position = batch[-1][0] if more else head
        self._apply(batch, position)
        self.position = position
        return more

    def _apply(self, batch: list[Positioned], position: int) -> None:
        if self._skipped:
            batch = [(n, event) for n, event in batch if n not in self._skipped]
        try:
            self.projection.process(batch, self.position, position)
        except Exception as error:
            if _passes(error, self._transient):
                raise
            self._pinpoint(batch)
            raise  # each event applied on its own: the next attempt goes on from there

    def _pinpoint(self, batch: list[Positioned]) -> None:
        """Apply the events one by one; EventFailure names the first that fails."""
        for position, event in batch:
            try:
                self.projection.process([(position, event)], self.position, position)
            except Exception as error:
                if _passes(error, self._transient):
                    raise
                raise EventFailure(position, describe(error)) from error
            self.position = position
