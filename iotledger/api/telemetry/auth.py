"""Device Telemetry: sign-up, sign-in by email, and refresh-token sessions.

The access token is the same JWT the Lambda dialect issues (one hour here), so
either dialect accepts the other's. The refresh token travels only in an
HttpOnly, SameSite=Strict cookie scoped to this path: scripts cannot read it and
no other site or path gets it sent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import CookieParameter, JSONBody

from iotledger.adapters.security.tokens import RefreshToken, new_refresh_token, read_refresh_token
from iotledger.api.auth import Principal
from iotledger.api.clients import client_address
from iotledger.api.deps import off_loop
from iotledger.api.openapi import raises
from iotledger.api.settle import record, settle
from iotledger.api.signin import (
    Email,
    LoginName,
    LoginPassword,
    Password,
    Username,
    sign_in,
    sign_up,
)
from iotledger.application.clock import now
from iotledger.application.sessions import CloseSession, OpenSession, RefreshSession
from iotledger.bootstrap import Services
from iotledger.domain.errors import Conflict, TooManyRequests, Unauthorized
from iotledger.domain.sessions import InvalidRefreshToken
from iotledger.domain.users import InvalidCredentials
from iotledger.projections.sessions import SessionProjection, SessionSummary
from iotledger.projections.users import UserSummary
from iotledger.settings import Settings

AUTH_PATH = "/api/v1/auth"
REFRESH_COOKIE = "refresh_token"
ACCESS_TTL = timedelta(hours=1)
REFRESH_TTL = timedelta(days=30)  # of each token; a refresh starts a new one

RefreshCookie = Annotated[str | None, CookieParameter(name=REFRESH_COOKIE, required=False)]


class RegisterBody(msgspec.Struct):
    username: Username
    email: Email
    password: Password


class LoginBody(msgspec.Struct):
    email: LoginName
    password: LoginPassword


class UserReply(msgspec.Struct):
    id: UUID
    username: str
    email: str | None


class TokenReply(msgspec.Struct):
    access_token: str
    expires_in: int


def refresh_cookie(settings: Settings, token: RefreshToken | None) -> Cookie:
    """The cookie that carries `token`, or, for None, the one that makes the client drop it."""
    return Cookie(
        key=REFRESH_COOKIE,
        value=token.value if token else "",
        path=AUTH_PATH,
        max_age=int(REFRESH_TTL.total_seconds()) if token else 0,
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
    )


def tokens(services: Services, user: UserSummary, refresh: RefreshToken) -> Response[TokenReply]:
    access = services.tokens.issue(user.id, user.username, now(), ACCESS_TTL)
    return Response(
        TokenReply(access_token=access, expires_in=int(ACCESS_TTL.total_seconds())),
        cookies=[refresh_cookie(services.settings, refresh)],
    )


def presented(cookie: str | None) -> RefreshToken:
    token = read_refresh_token(cookie)
    if token is None:
        raise InvalidRefreshToken("no valid refresh token")
    return token


class TelemetryAuthController(Controller):
    path = AUTH_PATH
    tags = ["Device Telemetry: auth"]

    @post("/register", status_code=201, opt=raises(Conflict))
    async def register(
        self, data: JSONBody[RegisterBody], services: NamedDependency[Services]
    ) -> UserReply:
        user = await sign_up(services, data.username, data.email, data.password)
        return UserReply(id=user.id, username=user.username, email=user.email)

    @post("/login", status_code=200, opt=raises(InvalidCredentials, TooManyRequests))
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginBody],
        services: NamedDependency[Services],
    ) -> Response[TokenReply]:
        user = await sign_in(
            services,
            services.users.by_email,
            data.email,
            data.password,
            client_address(request, services.settings.trusted_proxies),
        )
        at = now()
        refresh = new_refresh_token(uuid4())
        command = OpenSession(refresh.session_id, user.id, refresh.hash, at, at + REFRESH_TTL)
        await record(services.watch, services.ledger.open_session, command, SessionProjection)
        return tokens(services, user, refresh)

    @post("/refresh", status_code=200, opt=raises(InvalidRefreshToken))
    async def refresh(
        self, services: NamedDependency[Services], refresh_token: RefreshCookie = None
    ) -> Response[TokenReply]:
        old = presented(refresh_token)
        new = new_refresh_token(old.session_id)
        at = now()
        command = RefreshSession(old.session_id, old.hash, new.hash, at, at + REFRESH_TTL)
        refresh = services.ledger.refresh_session
        refreshed = await record(services.watch, refresh, command, SessionProjection)
        user = await off_loop(services.users.by_id, refreshed.user_id)
        if user is None:
            raise InvalidRefreshToken("invalid refresh token")
        return tokens(services, user, new)

    @post("/logout", status_code=204)
    async def logout(
        self, services: NamedDependency[Services], refresh_token: RefreshCookie = None
    ) -> Response[None]:
        """Revoke the cookie's session, if it names a live one, and clear the cookie anyway."""
        token = read_refresh_token(refresh_token)
        if token is not None:
            command = CloseSession(token.session_id, token.hash, now())
            position = await off_loop(services.ledger.close_session, command)
            await settle(services.watch, position or 0, SessionProjection)
        return Response(None, status_code=204, cookies=[refresh_cookie(services.settings, None)])

    @get("/me")
    async def me(
        self, principal: NamedDependency[Principal], services: NamedDependency[Services]
    ) -> UserReply:
        user = await off_loop(services.users.by_id, principal.user_id)
        if user is None:
            raise Unauthorized("invalid credentials")
        return UserReply(id=user.id, username=user.username, email=user.email)

    @get("/sessions")
    async def sessions(
        self, principal: NamedDependency[Principal], services: NamedDependency[Services]
    ) -> list[SessionSummary]:
        """The caller's sign-ins, newest first: when, how often refreshed, how each ended."""
        return await off_loop(services.sessions.of_user, principal.user_id)
