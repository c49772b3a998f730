"""The users read model: who exists, found by id, username or email."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.dispatch import singledispatchmethod

from iotledger.domain.users import User
from iotledger.projections.base import Projection, topics_of


class UserSummary(msgspec.Struct, frozen=True):
    id: UUID
    username: str
    email: str | None
    password_hash: str
    registered_at: datetime


class UserRows(ABC):
    """What the users projection writes, inside one unit of work."""

    @abstractmethod
    def add(self, user: UserSummary) -> None: ...

    @abstractmethod
    def set_password_hash(self, user_id: UUID, password_hash: str) -> None: ...


class UserProjection(Projection[UserRows]):
    name = "users"
    topics = topics_of(User.Registered, User.PasswordRehashed)

    @singledispatchmethod
    def apply(self, event: Any, work: UserRows) -> None:
        """Events of other topics are not ours."""

    @apply.register
    def _(self, event: User.Registered, work: UserRows) -> None:
        work.add(
            UserSummary(
                id=event.originator_id,
                username=event.username,
                email=event.email,
                password_hash=event.password_hash,
                registered_at=event.registered_at,
            )
        )

    @apply.register
    def _(self, event: User.PasswordRehashed, work: UserRows) -> None:
        work.set_password_hash(event.originator_id, event.password_hash)
