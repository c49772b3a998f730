"""Commands about users."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from iotledger.application.service import LedgerService, Written
from iotledger.domain.errors import Conflict, UserNotFound
from iotledger.domain.users import EmailIndex, User, UsernameIndex


class RegisterUser(msgspec.Struct, frozen=True):
    user_id: UUID
    username: str
    email: str | None
    password_hash: str
    at: datetime


class RehashPassword(msgspec.Struct, frozen=True):
    """Replace a hash made with older parameters by one made with the current ones."""

    user_id: UUID
    old_hash: str
    new_hash: str


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

    def rehash_password(self, cmd: RehashPassword) -> int | None:
        """The position of the rehash; None when another sign-in already replaced the hash."""
        user = self.user(cmd.user_id)
        if user.password_hash != cmd.old_hash:
            return None
        user.rehash_password(cmd.new_hash)
        try:
            return self.append(user)
        except Conflict:
            return None  # a concurrent sign-in rehashed (or changed) it first

    def user(self, user_id: UUID) -> User:
        return self.load(User, user_id, UserNotFound)
