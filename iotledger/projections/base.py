"""What a projection is: a name, the event topics it reads, and how it applies them.

A projection applies a batch of events inside one unit of work of its view; the
view commits the rows and the projection's new position in one transaction, so a
projection is exactly-once however often it is stopped and restarted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Generic, TypeVar

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.utils import get_topic

from iotledger.projections.failures import Failure

Event = DomainEventProtocol[Any]
Positioned = tuple[int, Event]
"""An event with its position in the log (its notification id)."""
UnitOfWork = TypeVar("UnitOfWork")


class LostRace(RuntimeError):
    """Another runner applied these events first; this batch was rolled back (a view's
    `unit_of_work` raises it). Never an event's fault: its runner starts again."""


class View(ABC, Generic[UnitOfWork]):
    """A read model with its own tracking position."""

    @abstractmethod
    def position(self) -> int | None:
        """The last log position applied, or None before the first."""

    @abstractmethod
    def unit_of_work(self, after: int | None, position: int) -> AbstractContextManager[UnitOfWork]:
        """One transaction: what is written in it and the new position commit together,
        only if the view is still at `after` (else nothing is written)."""

    @abstractmethod
    def wipe(self) -> None:
        """Forget every row, the position and any failure, so that a rebuild starts
        from nothing (the skips an operator ordered stay: see `skipped`)."""

    @abstractmethod
    def failure(self) -> Failure | None:
        """The failure recorded for this projection (by any process), if any."""

    @abstractmethod
    def record_failure(self, failure: Failure) -> None:
        """Record (or replace) this projection's failure, for every process to see."""

    @abstractmethod
    def clear_failure(self) -> None:
        """The projection is past its failure: forget it."""

    @abstractmethod
    def skipped(self) -> frozenset[int]:
        """The log positions an operator ordered this projection to leave out."""


class Projection(ABC, Generic[UnitOfWork]):
    """Turns events into rows of one view.

    Subclasses define `apply` as an eventsourcing `singledispatchmethod` with one
    registered implementation per event class; `process_batch` may be overridden
    where a whole batch can be written at once (readings, by COPY).
    """

    name: ClassVar[str]
    topics: ClassVar[tuple[str, ...]]
    batch_size: ClassVar[int] = 1000
    """How many events its runner reads and applies in one transaction."""
    pace: ClassVar[float] = 0.0
    """Seconds its runner leaves at least between the starts of two batches while
    events keep coming (0: a batch as soon as events arrive)."""

    def __init__(self, view: View[UnitOfWork]) -> None:
        self.view = view

    def process(self, batch: Sequence[Positioned], after: int | None, position: int) -> None:
        """Apply a batch of (log position, event) read after `after`; `position` is where
        they bring us."""
        with self.view.unit_of_work(after, position) as work:
            self.process_batch(batch, work)

    def process_batch(self, batch: Sequence[Positioned], work: UnitOfWork) -> None:
        """One event at a time; a view that keeps an event's position overrides this."""
        for _, event in batch:
            self.apply(event, work)

    @abstractmethod
    def apply(self, event: Any, work: UnitOfWork) -> None:
        """Apply one event."""


def topics_of(*event_classes: type[Any]) -> tuple[str, ...]:
    return tuple(get_topic(cls) for cls in event_classes)
