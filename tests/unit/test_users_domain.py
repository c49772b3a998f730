"""The User aggregate and its uniqueness indexes, in memory."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from eventsourcing.application import Application
from hypothesis import given
from hypothesis import strategies as st

from iotledger.domain.users import EmailIndex, User, UsernameIndex

names = st.text(min_size=3, max_size=50).filter(lambda s: s.strip() != "")
moments = st.datetimes(timezones=st.just(UTC))


@given(
    st.uuids(),
    names,
    st.none() | st.emails(),
    st.text(min_size=1),
    moments,
    st.lists(st.text(min_size=1), max_size=5),
)
def test_replaying_a_users_events_gives_the_same_user(
    user_id: UUID,
    username: str,
    email: str | None,
    password_hash: str,
    at: datetime,
    rehashes: list[str],
) -> None:
    app: Application[UUID] = Application()
    user = User(
        user_id=user_id,
        username=username,
        email=email,
        password_hash=password_hash,
        registered_at=at,
    )
    for new_hash in rehashes:
        user.rehash_password(new_hash)
    app.save(user)
    replayed: User = app.repository.get(user_id)
    assert (replayed.id, replayed.username, replayed.email) == (user_id, username, email)
    assert replayed.password_hash == (rehashes[-1] if rehashes else password_hash)
    assert replayed.version == 1 + len(rehashes)


@given(names)
def test_a_username_claims_the_same_index_whatever_its_case(username: str) -> None:
    assert UsernameIndex.create_id(username) == UsernameIndex.create_id(f" {username.upper()} ")
    assert UsernameIndex.create_id(username) == UsernameIndex.create_id(username.lower())


@given(st.emails())
def test_usernames_and_emails_claim_different_indexes(text: str) -> None:
    assert UsernameIndex.create_id(text) != EmailIndex.create_id(text)
