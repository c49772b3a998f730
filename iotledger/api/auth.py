"""Who is calling: a signed-in user's bearer token, or a device's own credentials.

A device signs in with HTTP Basic (its issued username and secret) on the two
requests a device makes of its own accord (posting telemetry, answering a
command), for its own id only; every other use of device credentials is 401.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request
from litestar.di import NamedDependency

from iotledger.adapters.security.credentials import CachedCredentials
from iotledger.adapters.security.tokens import TokenIssuer
from iotledger.domain.credentials import CredentialKind
from iotledger.domain.errors import Unauthorized

INVALID = "invalid credentials"


class Principal(msgspec.Struct, frozen=True, tag=True):
    """The signed-in user on whose behalf a request acts."""

    user_id: UUID
    username: str
    exp: int


class DeviceCaller(msgspec.Struct, frozen=True, tag=True):
    """A device signed in with its own credentials, acting for itself alone."""

    device_id: UUID
    username: str


Caller = Principal | DeviceCaller


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("no claims")
    return token.strip()


def principal_of(tokens: TokenIssuer, authorization: str) -> Principal:
    """Who an Authorization header speaks for; Unauthorized unless its token holds."""
    claims = tokens.verify(bearer_token(authorization))
    return Principal(user_id=claims.user_id, username=claims.sub, exp=claims.exp)


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """The username and password of `Authorization: Basic ...`; None for another scheme."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized(INVALID) from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise Unauthorized(INVALID)
    return username, password


async def caller_of(
    tokens: TokenIssuer, credentials: CachedCredentials, authorization: str, device_id: UUID | None
) -> Caller:
    """A user with a bearer token, or the device `device_id` with its own credentials."""
    basic = basic_credentials(authorization)
    if basic is None:
        return principal_of(tokens, authorization)
    credential = await credentials.verify_async(*basic)
    if (
        credential is None
        or credential.kind != CredentialKind.DEVICE
        or credential.subject_id != device_id
    ):
        raise Unauthorized(INVALID)
    return DeviceCaller(device_id=credential.subject_id, username=credential.username)


async def provide_principal(
    request: Request[Any, Any, Any], tokens: NamedDependency[TokenIssuer]
) -> Principal:
    """The dependency `principal`: declare it on a handler to require a signed-in user."""
    return principal_of(tokens, request.headers.get("authorization", ""))


async def provide_caller(
    request: Request[Any, Any, Any],
    tokens: NamedDependency[TokenIssuer],
    credentials: NamedDependency[CachedCredentials],
) -> Caller:
    """The dependency `caller`: a signed-in user, or the device its path names."""
    authorization = request.headers.get("authorization", "")
    device_id = _uuid(request.path_params.get("device_id"))
    return await caller_of(tokens, credentials, authorization, device_id)


def _uuid(text: object) -> UUID | None:
    try:
        return UUID(str(text))
    except ValueError:
        return None
