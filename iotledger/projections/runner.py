"""Runs one projection forever, and brings it back when anything breaks.

The runner reads the log after its view's position in batches, applies each
batch in one transaction, and sleeps on the feed until new events arrive. Any
error (a killed LISTEN connection, a restarted database) ends the current
attempt; the supervisor loop starts a new one from the position the view
committed, so nothing is lost and nothing is applied twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from iotledger.projections.base import Event, Projection

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
    ) -> None:
        self.projection = projection
        self.name = projection.name
        self._feed = feed
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=f"projection-{self.name}")
        self.position: int | None = None
        self.restarts = 0
        self.failing = False  # the last attempt ended in an error, and none has run since
        self._on_failure = on_failure
        self._last_batch = 0.0
        self.active = threading.Event()  # set while this runner is the one at work

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _supervise(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                self._run()
            except Exception:
                self.restarts += 1
                self.failing = True
                self._on_failure()
                log.exception("projection %s failed; restarting in %.1fs", self.name, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                backoff = 0.1

    def _run(self) -> None:
        with self._feed(self.projection.topics) as feed:
            while not feed.hold(self.name):
                log.info("projection %s runs elsewhere; standing by", self.name)
                if self._stopping.wait(self._idle_wait * 4):
                    return
            self.position = self.projection.view.position()
            self.active.set()
            self.failing = False
            try:
                while not self._stopping.is_set():
                    if not self.catch_up(feed):
                        feed.wait(self._idle_wait)
                        self._pace()
            finally:
                self.active.clear()

    def _pace(self) -> None:
        """While events keep coming, batches start at least `pace` seconds apart: the
        events of that time are applied together, for much less work per event. After
        a quiet spell the first event is applied at once."""
        remaining = self._last_batch + self.projection.pace - time.monotonic()
        if remaining > 0:
            self._stopping.wait(remaining)

    def catch_up(self, feed: EventFeed) -> bool:
        """Apply what the log holds now; True if there may be more already."""
        head = feed.head()
        if head is None or (self.position is not None and head <= self.position):
            return False
        self._last_batch = time.monotonic()
        batch = feed.read(self.position, head, self.projection.topics, self._batch_size)
        more = len(batch) == self._batch_size
        position = batch[-1][0] if more else head
        self.projection.process(batch, self.position, position)
        self.position = position
        return more
