"""The base of the application service: saving, loading, and the position of a write.

Each area of the domain (users, devices, readings, commands) adds its commands
as a mixin of `LedgerService`; `iotledger.application.ledger.Ledger` combines them into
one eventsourcing application over one log.
"""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from iotledger.domain.errors import Conflict, NotFound
from iotledger.domain.storable import check_storable_event

A = TypeVar("A", bound=Aggregate)


class Written(msgspec.Struct, frozen=True):
    """What a write produced: the id it concerns and the log position it reached."""

    id: UUID
    position: int


class LedgerService(Application[UUID]):
    def load(self, cls: type[A], aggregate_id: UUID, missing: type[NotFound] = NotFound) -> A:
        """The aggregate, or `missing` when there is none of that class with that id."""
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise missing() from None
        if not isinstance(aggregate, cls):
            raise missing()
        return aggregate

    def append(self, *aggregates: Any, conflict: str = "resource already exists") -> int:
        """Save in one transaction; the position reached, or Conflict if an id was taken.

        Every event is checked first: text no read model could store is refused
        (UnstorableText) before anything is saved, whichever channel sent it.
        """
        for aggregate in aggregates:
            for event in aggregate.pending_events:
                check_storable_event(event)
        try:
            recordings = self.save(*aggregates)
        except IntegrityError:
            raise Conflict(conflict) from None
        return max((r.notification.id for r in recordings), default=0)
