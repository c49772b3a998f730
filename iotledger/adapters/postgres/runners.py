"""The projections of one process: their feeds, their runners, and which of them it runs.

`iotledger serve`, the tests and the benchmarks start runners the same way, here
(`running`, or `start` and `stop` where the stopping must not block an event loop).
The process's state of each runner is what `statuses` adds to the tracking table:
a projection this process runs but that holds no lock is standing by, or failing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg_pool import ConnectionPool

from iotledger.adapters.observability.metrics import PROJECTION_FAILURES
from iotledger.adapters.postgres.feed import PostgresEventFeed, open_feed
from iotledger.adapters.postgres.projection_failures import transient
from iotledger.adapters.postgres.projection_status import ProjectionStatus, projection_statuses
from iotledger.adapters.postgres.views.base import PostgresView
from iotledger.adapters.postgres.views.catalog import PROJECTIONS
from iotledger.projections.runner import ProjectionRunner


@dataclass(frozen=True)
class ProjectionRunners:
    recorder: PostgresApplicationRecorder
    mapper: Mapper[UUID]
    views: Mapping[str, PostgresView[Any]]
    """Each projection's view, by its name."""
    pool: ConnectionPool[Any]
    conninfo: Callable[[str], str]
    """The connection string of a connection of its own for a purpose (it names it)."""
    _running: dict[str, ProjectionRunner] = field(default_factory=dict, init=False)
    """The runners this process runs now, by projection."""

    @contextmanager
    def feed(self, topics: Sequence[str] = (), *, name: str = "") -> Iterator[PostgresEventFeed]:
        """The feed of projection `name` (it names the feed's connections)."""
        conninfo = self.conninfo(f"feed-{name}" if name else "feed")
        with open_feed(self.recorder, self.mapper, conninfo, topics) as feed:
            yield feed

    def runners(self, names: Collection[str] = ()) -> list[ProjectionRunner]:
        """New runners of `names` (none given: every projection), not started."""
        chosen = list(names) or list(PROJECTIONS)
        projections = [PROJECTIONS[name][0](self.views[name]) for name in chosen]
        return [
            ProjectionRunner(
                p,
                partial(self.feed, name=p.name),
                batch_size=p.batch_size,
                on_failure=PROJECTION_FAILURES.labels(p.name).inc,
                transient=transient,
            )
            for p in projections
        ]

    def start(self, names: Collection[str] = ()) -> list[ProjectionRunner]:
        """Run `names` (none given: every projection) in this process, until `stop`."""
        started = self.runners(names)
        for runner in started:
            self._running[runner.name] = runner
            runner.start()
        return started

    def stop(self, runners: Collection[ProjectionRunner]) -> None:
        """Stop runners `start` started; blocks until each has finished its batch."""
        for runner in runners:
            runner.stop()
            if self._running.get(runner.name) is runner:
                del self._running[runner.name]

    @contextmanager
    def running(self, names: Collection[str] = ()) -> Iterator[list[ProjectionRunner]]:
        """`start`, and `stop` at the end of the block."""
        started = self.start(names)
        try:
            yield started
        finally:
            self.stop(started)

    def statuses(self) -> list[ProjectionStatus]:
        """Bounded: a scrape or a readiness check waits at most 2 s for a connection."""
        connect = partial(self.pool.connection, timeout=2.0)
        return projection_statuses(connect, list(PROJECTIONS), self._running)
