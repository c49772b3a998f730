"""The sessions read model: who signed in when, how often they refreshed, how it ended.

Token hashes stay in the event store; this model never holds them, so reading
it reveals nothing a refresh could be forged from.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from eventsourcing.dispatch import singledispatchmethod

from iotledger.domain.sessions import Session
from iotledger.projections.base import Projection, topics_of

Ending = Literal["logout", "reuse"]


class SessionSummary(msgspec.Struct, frozen=True):
    id: UUID
    user_id: UUID
    issued_at: datetime
    expires_at: datetime
    refreshed_at: datetime | None = None
    refreshes: int = 0
    revoked_at: datetime | None = None
    revoked_because: Ending | None = None


class SessionRows(ABC):
    """What the sessions projection writes, inside one unit of work."""

    @abstractmethod
    def add(self, session: SessionSummary) -> None: ...

    @abstractmethod
    def refreshed(self, session_id: UUID, at: datetime, expires_at: datetime) -> None: ...

    @abstractmethod
    def revoked(self, session_id: UUID, at: datetime, because: Ending) -> None: ...


class SessionProjection(Projection[SessionRows]):
    name = "sessions"
    topics = topics_of(Session.Issued, Session.Rotated, Session.Revoked, Session.ReuseDetected)

    @singledispatchmethod
    def apply(self, event: Any, work: SessionRows) -> None:
        """Events of other topics are not ours."""

    @apply.register
    def _(self, event: Session.Issued, work: SessionRows) -> None:
        work.add(
            SessionSummary(
                id=event.originator_id,
                user_id=event.user_id,
                issued_at=event.issued_at,
                expires_at=event.expires_at,
            )
        )

    @apply.register
    def _(self, event: Session.Rotated, work: SessionRows) -> None:
        work.refreshed(event.originator_id, event.rotated_at, event.expires_at)

    @apply.register
    def _(self, event: Session.Revoked, work: SessionRows) -> None:
        work.revoked(event.originator_id, event.revoked_at, "logout")

    @apply.register
    def _(self, event: Session.ReuseDetected, work: SessionRows) -> None:
        work.revoked(event.originator_id, event.detected_at, "reuse")
