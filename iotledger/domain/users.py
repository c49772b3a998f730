"""Users: who may sign in, and the indexes that keep usernames and emails unique.

Uniqueness is enforced by the event store itself: the index aggregates have ids
derived (uuid5) from the normalised name, so a second registration of the same
name tries to write version 1 of an existing aggregate and the whole append fails.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from iotledger.domain.errors import Unauthorized

_USERNAMES = uuid5(NAMESPACE_URL, "iotledger:username")
_EMAILS = uuid5(NAMESPACE_URL, "iotledger:email")


class InvalidCredentials(Unauthorized):
    """A sign-in failed: one answer whether the name or the password was wrong."""

    code = "INVALID_CREDENTIALS"


def normalise(name: str) -> str:
    """Usernames and emails compare case-insensitively, without edge spaces, and
    canonically: `a` + U+0301 (combining acute) and `á` look alike, so they are one name.

    NFC before case folding (so a decomposed capital folds like a composed one) and
    after it (folding can decompose, e.g. U+0130). Names registered before NFC was
    applied keep their old index ids; `iotledger projections rebuild users` re-keys
    the read model's lookups.
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name.strip()).casefold())


class User(Aggregate):
    """A person or program that signs in."""

    class Registered(Aggregate.Created):
        user_id: UUID
        username: str
        email: str | None
        password_hash: str
        registered_at: datetime

    class PasswordRehashed(Aggregate.Event):
        password_hash: str

    @event(Registered)
    def __init__(
        self,
        user_id: UUID,
        username: str,
        email: str | None,
        password_hash: str,
        registered_at: datetime,
    ) -> None:
        self.username = username
        self.email = email
        self.password_hash = password_hash
        self.registered_at = registered_at

    @staticmethod
    def create_id(user_id: UUID) -> UUID:
        return user_id

    @event(PasswordRehashed)
    def rehash_password(self, password_hash: str) -> None:
        self.password_hash = password_hash


class UsernameIndex(Aggregate):
    """Claims one username for one user, forever."""

    class Claimed(Aggregate.Created):
        username: str
        user_id: UUID

    @event(Claimed)
    def __init__(self, username: str, user_id: UUID) -> None:
        self.user_id = user_id

    @staticmethod
    def create_id(username: str) -> UUID:
        return uuid5(_USERNAMES, normalise(username))


class EmailIndex(Aggregate):
    """Claims one email address for one user, forever."""

    class Claimed(Aggregate.Created):
        email: str
        user_id: UUID

    @event(Claimed)
    def __init__(self, email: str, user_id: UUID) -> None:
        self.user_id = user_id

    @staticmethod
    def create_id(email: str) -> UUID:
        return uuid5(_EMAILS, normalise(email))
