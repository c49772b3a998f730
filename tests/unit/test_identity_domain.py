"""Sessions in memory: a refresh-token family behaves like the model RFC 9700 describes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from iotledger.application.ledger import Ledger
from iotledger.application.sessions import (
    CloseSession,
    OpenSession,
    RefreshSession,
)
from iotledger.domain.sessions import InvalidRefreshToken, Presented, Session

START = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)
LIFETIME = timedelta(days=30)


def digest(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def opened(ledger: Ledger) -> UUID:
    session_id = uuid4()
    ledger.open_session(OpenSession(session_id, uuid4(), digest(0), START, START + LIFETIME))
    return session_id


def refresh(ledger: Ledger, session_id: UUID, presented: int, new: int) -> bool:
    command = RefreshSession(session_id, digest(presented), digest(new), START, START + LIFETIME)
    try:
        ledger.refresh_session(command)
    except InvalidRefreshToken:
        return False
    return True


def memory_ledger() -> Ledger:
    return Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


# Each step presents one token: an index into those issued so far, or a never-issued one.
steps = st.lists(st.integers(min_value=-1, max_value=20), max_size=12)


@given(steps)
def test_only_the_newest_token_refreshes_and_a_replay_ends_the_family(choices: list[int]) -> None:
    ledger = memory_ledger()
    session_id = opened(ledger)
    issued, alive, replayed = [0], True, False
    for choice in choices:
        presented = issued[choice % len(issued)] if choice >= 0 else 999
        is_newest = presented == issued[-1]
        expected = alive and is_newest
        assert refresh(ledger, session_id, presented, len(issued)) is expected
        if expected:
            issued.append(len(issued))
        elif alive and presented in issued:
            alive, replayed = False, True
    kinds = [type(e).__qualname__ for e in ledger.events.get(session_id)]
    rotated = ["Session.Rotated"] * (len(issued) - 1)
    assert kinds == ["Session.Issued", *rotated, *(["Session.ReuseDetected"] * replayed)]


@given(st.integers(min_value=0, max_value=5))
def test_replaying_a_sessions_events_gives_the_same_family(rotations: int) -> None:
    ledger = memory_ledger()
    session_id = opened(ledger)
    for n in range(rotations):
        assert refresh(ledger, session_id, n, n + 1)
    session: object = ledger.repository.get(session_id)
    assert isinstance(session, Session)
    assert session.judge(digest(rotations), START) is Presented.CURRENT
    assert {session.judge(digest(n), START) for n in range(rotations)} <= {Presented.SPENT}
    assert session.judge(digest(99), START) is Presented.UNKNOWN
    assert session.judge(digest(rotations), START + LIFETIME) is Presented.DEAD
    assert session.version == 1 + rotations


def test_logout_revokes_the_family_and_is_recorded_as_the_users_act() -> None:
    ledger = memory_ledger()
    session_id = opened(ledger)
    assert refresh(ledger, session_id, 0, 1)
    assert ledger.close_session(CloseSession(session_id, digest(1), START)) is not None
    assert not refresh(ledger, session_id, 1, 2)
    assert ledger.close_session(CloseSession(session_id, digest(1), START)) is None
    last = list(ledger.events.get(session_id))[-1]
    assert isinstance(last, Session.Revoked)
    assert last.by.startswith("user:")


def test_logout_with_a_spent_token_is_a_replay() -> None:
    ledger = memory_ledger()
    session_id = opened(ledger)
    assert refresh(ledger, session_id, 0, 1)
    ledger.close_session(CloseSession(session_id, digest(0), START))
    last = list(ledger.events.get(session_id))[-1]
    assert isinstance(last, Session.ReuseDetected)
    assert last.by == "system"


def test_an_unknown_family_refreshes_nothing_and_closes_nothing() -> None:
    ledger, session_id = memory_ledger(), uuid4()
    assert not refresh(ledger, session_id, 0, 1)
    assert ledger.close_session(CloseSession(session_id, digest(0), START)) is None
