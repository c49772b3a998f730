"""Who is calling: the bearer token of a request, checked once, for every dialect."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Request
from litestar.di import NamedDependency

from iotledger.bootstrap import Services
from iotledger.domain.errors import Unauthorized


class Principal(msgspec.Struct, frozen=True):
    """The signed-in user on whose behalf a request acts."""

    user_id: UUID
    username: str
    exp: int


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("no claims")
    return token.strip()


def principal_of(services: Services, authorization: str) -> Principal:
    """Who an Authorization header speaks for; Unauthorized unless its token holds."""
    claims = services.tokens.verify(bearer_token(authorization))
    return Principal(user_id=claims.user_id, username=claims.sub, exp=claims.exp)


async def provide_principal(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> Principal:
    """The dependency `principal`: declare it on a handler to require a signed-in user."""
    return principal_of(services, request.headers.get("authorization", ""))
