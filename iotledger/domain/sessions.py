"""Sessions: the refresh-token families of RFC 9700, one aggregate per sign-in.

A sign-in opens a family with one opaque refresh token; every refresh rotates it
(the presented token becomes spent, a new one is current). Only SHA-256 hashes
of tokens are ever recorded. A spent token presented again means that someone
holds a copy of it, so the whole family is revoked: the thief's token and the
victim's newest one both stop working, and the event says when it happened.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from enum import Enum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from iotledger.domain.errors import Unauthorized


class InvalidRefreshToken(Unauthorized):
    code = "INVALID_REFRESH_TOKEN"


class Presented(Enum):
    """What a presented refresh token is to its family."""

    CURRENT = "current"  # the newest token, not expired, family alive: may be used
    SPENT = "spent"  # an older, rotated token of a live family: a replay
    DEAD = "dead"  # a token of a revoked family, or the expired newest one
    UNKNOWN = "unknown"  # never issued in this family


class Session(Aggregate):
    """One refresh-token family, from sign-in to logout, expiry or detected reuse."""

    class Issued(Aggregate.Created):
        session_id: UUID
        user_id: UUID
        token_hash: str
        issued_at: datetime
        expires_at: datetime
        by: str

    class Rotated(Aggregate.Event):
        old_hash: str
        token_hash: str
        rotated_at: datetime
        expires_at: datetime
        by: str

    class Revoked(Aggregate.Event):
        revoked_at: datetime
        by: str

    class ReuseDetected(Aggregate.Event):
        token_hash: str
        detected_at: datetime
        by: str

    @event(Issued)
    def __init__(
        self,
        session_id: UUID,
        user_id: UUID,
        token_hash: str,
        issued_at: datetime,
        expires_at: datetime,
        *,
        by: str,
    ) -> None:
        self.user_id = user_id
        self.token_hash = token_hash
        self.expires_at = expires_at
        self.spent: set[str] = set()
        self.revoked = False

    @staticmethod
    def create_id(session_id: UUID) -> UUID:
        return session_id

    def judge(self, token_hash: str, now: datetime) -> Presented:
        if hmac.compare_digest(token_hash, self.token_hash):
            alive = not self.revoked and now < self.expires_at
            return Presented.CURRENT if alive else Presented.DEAD
        if token_hash in self.spent:
            return Presented.DEAD if self.revoked else Presented.SPENT
        return Presented.UNKNOWN

    def rotate(self, old_hash: str, token_hash: str, at: datetime, expires_at: datetime) -> None:
        if self.judge(old_hash, at) is not Presented.CURRENT:
            raise InvalidRefreshToken("invalid refresh token")
        self._rotated(old_hash, token_hash, at, expires_at, f"user:{self.user_id}")

    @event(Rotated)
    def _rotated(
        self, old_hash: str, token_hash: str, rotated_at: datetime, expires_at: datetime, by: str
    ) -> None:
        self.spent.add(old_hash)
        self.token_hash = token_hash
        self.expires_at = expires_at

    @event(Revoked)
    def revoke(self, revoked_at: datetime, by: str) -> None:
        self.revoked = True

    @event(ReuseDetected)
    def detect_reuse(self, token_hash: str, detected_at: datetime, by: str) -> None:
        self.revoked = True
