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

Event = DomainEventProtocol[Any]
UnitOfWork = TypeVar("UnitOfWork")


class View(ABC, Generic[UnitOfWork]):
    """A read model with its own tracking position."""

    @abstractmethod
    def position(self) -> int | None:
        """The last log position applied, or None before the first."""

    @abstractmethod
    def unit_of_work(self, position: int) -> AbstractContextManager[UnitOfWork]:
        """One transaction: what is written in it and the new position commit together."""

    @abstractmethod
    def wipe(self) -> None:
        """Forget every row and the position, so that a rebuild starts from nothing."""


class Projection(ABC, Generic[UnitOfWork]):
    """Turns events into rows of one view.

    Subclasses define `apply` as an eventsourcing `singledispatchmethod` with one
    registered implementation per event class; `process_batch` may be overridden
    where a whole batch can be written at once (readings, by COPY).
    """

    name: ClassVar[str]
    topics: ClassVar[tuple[str, ...]]

    def __init__(self, view: View[UnitOfWork]) -> None:
        self.view = view

    def process(self, events: Sequence[Event], position: int) -> None:
        """Apply a batch of events; `position` is the log position they bring us to."""
        with self.view.unit_of_work(position) as work:
            self.process_batch(events, work)

    def process_batch(self, events: Sequence[Event], work: UnitOfWork) -> None:
        for event in events:
            self.apply(event, work)

    @abstractmethod
    def apply(self, event: Any, work: UnitOfWork) -> None:
        """Apply one event."""


def topics_of(*event_classes: type[Any]) -> tuple[str, ...]:
    return tuple(get_topic(cls) for cls in event_classes)
