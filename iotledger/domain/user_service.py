"""Commands about users."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from iotledger.domain.service import LedgerService, Written
from iotledger.domain.users import EmailIndex, User, UsernameIndex


class RegisterUser(msgspec.Struct, frozen=True):
    user_id: UUID
    username: str
    email: str | None
    password_hash: str
    at: datetime


class UserService(LedgerService):
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
        position = self.append(user, *claims, conflict="username or email already exists")
        return Written(user.id, position)

    def user(self, user_id: UUID) -> User:
        return self.load(User, user_id, "user not found")
