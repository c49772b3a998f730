"""The application service: every command of the domain enters here.

Each method is get, act, save: it turns a command into aggregate events, appends
them in one transaction and returns the position of that append, so that a
reader can wait for the projections to reach it (read-your-writes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Recording

from iotledger.domain.errors import Conflict, NotFound
from iotledger.domain.users import EmailIndex, User, UsernameIndex


class Written(msgspec.Struct, frozen=True):
    """What a write produced: the id it concerns and the log position it reached."""

    id: UUID
    position: int


class RegisterUser(msgspec.Struct, frozen=True):
    user_id: UUID
    username: str
    email: str | None
    password_hash: str
    at: datetime


def position_of(recordings: list[Recording[UUID]]) -> int:
    return max(r.notification.id for r in recordings)


class Ledger(Application[UUID]):
    """iotledger's event-sourced application: one log for the whole domain."""

    name = "iotledger"

    def register_user(self, cmd: RegisterUser) -> Written:
        user = User(
            user_id=cmd.user_id,
            username=cmd.username,
            email=cmd.email,
            password_hash=cmd.password_hash,
            registered_at=cmd.at,
        )
        claims: list[Any] = [UsernameIndex(username=cmd.username, user_id=user.id)]
        if cmd.email is not None:
            claims.append(EmailIndex(email=cmd.email, user_id=user.id))
        try:
            recordings = self.save(user, *claims)
        except IntegrityError:
            raise Conflict("username or email already exists") from None
        return Written(user.id, position_of(recordings))

    def user(self, user_id: UUID) -> User:
        try:
            user: User = self.repository.get(user_id)
        except AggregateNotFoundError:
            raise NotFound("user not found") from None
        return user
