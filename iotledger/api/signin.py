"""Sign-up and sign-in, the same way for both dialects, over one set of users.

The rules for names and passwords live here once, so a user registered through
one dialect can always sign in through the other with the same password.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from uuid import UUID, uuid4

import msgspec

from iotledger.api.deps import off_loop
from iotledger.api.settle import record
from iotledger.application.clock import now
from iotledger.application.users import RegisterUser, RehashPassword
from iotledger.bootstrap import Services
from iotledger.domain.storable import check_storable
from iotledger.domain.users import InvalidCredentials, normalise
from iotledger.projections.users import UserProjection, UserSummary

# No edge spaces (they would be normalised away, so " bob" would only look unlike
# "bob") and no control characters. `\Z`, not `$`: `$` also matches before a final "\n".
_PRINTABLE = r"[^\s\x00-\x1f\x7f]"
Username = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=50,
        pattern=rf"^{_PRINTABLE}(?:[^\x00-\x1f\x7f]*{_PRINTABLE})?\Z",
        description="3 to 50 characters, unique whatever the case",
    ),
]
Password = Annotated[
    str,
    msgspec.Meta(min_length=6, max_length=1024, description="at least 6 characters"),
]
Email = Annotated[
    str,
    msgspec.Meta(
        max_length=254,
        pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+\Z",
        description="an email address, unique whatever the case",
    ),
]
# What a sign-in accepts: only bounded, so that nothing huge reaches argon2.
LoginName = Annotated[str, msgspec.Meta(max_length=320)]
LoginPassword = Annotated[str, msgspec.Meta(max_length=1024)]

Lookup = Callable[[str], UserSummary | None]


class NewUser(msgspec.Struct):
    id: UUID
    username: str
    email: str | None


async def sign_up(services: Services, username: str, email: str | None, password: str) -> NewUser:
    """Register a user; Conflict when the username or the email is taken, in any case."""
    password_hash = await off_loop(services.hasher.hash, password)
    command = RegisterUser(
        user_id=uuid4(),
        username=username,
        email=email,
        password_hash=password_hash,
        at=now(),
    )
    written = await record(services.watch, services.ledger.register_user, command, UserProjection)
    return NewUser(id=written.id, username=username, email=email)


async def sign_in(
    services: Services, lookup: Lookup, name: str, password: str, client: str
) -> UserSummary:
    """The user, or InvalidCredentials, or TooManyRequests before any password is checked.

    An unknown name is checked against a decoy hash and counted like a known
    one, so it costs as long and answers the same as a wrong password. A name no
    table could hold (a NUL character) is refused before it is looked up or counted.
    """
    check_storable(name, "username or email")
    user = await off_loop(lookup, name)
    account = f"name:{normalise(name)}" if user is None else f"user:{user.id}"
    attempt = await off_loop(services.login_limiter.begin, account, client)
    password_hash = None if user is None else user.password_hash
    if not await off_loop(services.hasher.verify, password_hash, password) or user is None:
        raise InvalidCredentials("invalid credentials")
    await off_loop(services.login_limiter.succeeded, attempt)
    if services.hasher.needs_rehash(user.password_hash):
        await rehash(services, user, password)
    return user


async def rehash(services: Services, user: UserSummary, password: str) -> None:
    """Bring a hash made with older argon2 parameters up to the current ones."""
    new_hash = await off_loop(services.hasher.hash, password)
    command = RehashPassword(user_id=user.id, old_hash=user.password_hash, new_hash=new_hash)
    await off_loop(services.ledger.rehash_password, command)
