"""Checking a password, the same way for both dialects."""

from __future__ import annotations

from collections.abc import Callable

from iotledger.api.deps import off_loop
from iotledger.bootstrap import Services
from iotledger.domain.errors import Unauthorized
from iotledger.projections.users import UserSummary

Lookup = Callable[[str], UserSummary | None]


async def sign_in(services: Services, lookup: Lookup, name: str, password: str) -> UserSummary:
    """The user, or Unauthorized; an unknown name costs as long as a wrong password."""
    user = await off_loop(lookup, name)
    password_hash = None if user is None else user.password_hash
    if not await off_loop(services.hasher.verify, password_hash, password) or user is None:
        raise Unauthorized("invalid credentials")
    return user
