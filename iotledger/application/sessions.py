"""Commands about sessions: sign-in opens one, refresh rotates it, logout closes it.

Two requests that present the same token at once both load the same version;
the event store lets only one append, and the other re-reads the family and is
judged again. So a token is rotated at most once, and the loser of such a race
is seen for what it is, a second use of a spent token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError

from iotledger.application.service import LedgerService, Written
from iotledger.domain.errors import Conflict
from iotledger.domain.sessions import InvalidRefreshToken, Presented, Session

R = TypeVar("R")

_ATTEMPTS = 3  # a family is written by one person's clients: races are short and rare


class OpenSession(msgspec.Struct, frozen=True):
    session_id: UUID
    user_id: UUID
    token_hash: str
    at: datetime
    expires_at: datetime


class RefreshSession(msgspec.Struct, frozen=True):
    session_id: UUID
    presented_hash: str
    token_hash: str
    at: datetime
    expires_at: datetime


class CloseSession(msgspec.Struct, frozen=True):
    session_id: UUID
    presented_hash: str
    at: datetime


class Refreshed(msgspec.Struct, frozen=True):
    """A rotated family: whose it is and the log position of the rotation."""

    user_id: UUID
    position: int


class SessionService(LedgerService):
    def open_session(self, cmd: OpenSession) -> Written:
        session = Session(
            session_id=cmd.session_id,
            user_id=cmd.user_id,
            token_hash=cmd.token_hash,
            issued_at=cmd.at,
            expires_at=cmd.expires_at,
            by=f"user:{cmd.user_id}",
        )
        return Written(session.id, self.append(session))

    def refresh_session(self, cmd: RefreshSession) -> Refreshed:
        """The rotated family, or InvalidRefreshToken (a replay also revokes the family)."""
        return self._retrying(lambda: self._refresh(cmd))

    def close_session(self, cmd: CloseSession) -> int | None:
        """Revoke the family of the presented token; None when there was nothing to revoke."""
        return self._retrying(lambda: self._close(cmd))

    def _refresh(self, cmd: RefreshSession) -> Refreshed:
        session, verdict = self._judged(cmd.session_id, cmd.presented_hash, cmd.at)
        if session is not None and verdict is Presented.SPENT:
            self._revoke_for_reuse(session, cmd.presented_hash, cmd.at)
            raise InvalidRefreshToken("refresh token reused; session revoked")
        if session is None or verdict is not Presented.CURRENT:
            raise InvalidRefreshToken("invalid refresh token")
        session.rotate(cmd.presented_hash, cmd.token_hash, cmd.at, cmd.expires_at)
        return Refreshed(session.user_id, self.append(session))

    def _close(self, cmd: CloseSession) -> int | None:
        session, verdict = self._judged(cmd.session_id, cmd.presented_hash, cmd.at)
        if session is not None and verdict is Presented.SPENT:
            return self._revoke_for_reuse(session, cmd.presented_hash, cmd.at)
        if session is None or verdict is not Presented.CURRENT:
            return None
        session.revoke(revoked_at=cmd.at, by=f"user:{session.user_id}")
        return self.append(session)

    def _revoke_for_reuse(self, session: Session, token_hash: str, at: datetime) -> int:
        # Nobody can tell the thief from the victim, so "system" caused this.
        session.detect_reuse(token_hash=token_hash, detected_at=at, by="system")
        return self.append(session)

    def _judged(
        self, session_id: UUID, token_hash: str, at: datetime
    ) -> tuple[Session | None, Presented]:
        """The family of a presented token and what the token is to it."""
        try:
            session: object = self.repository.get(session_id)
        except AggregateNotFoundError:
            return None, Presented.UNKNOWN
        if not isinstance(session, Session):
            return None, Presented.UNKNOWN
        return session, session.judge(token_hash, at)

    def _retrying(self, act: Callable[[], R]) -> R:
        """Run `act` again on a lost race, so it is judged against the family as it now is."""
        for _ in range(_ATTEMPTS - 1):
            try:
                return act()
            except Conflict:
                continue
        return act()
