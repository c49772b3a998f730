"""Lambda IoT Core: sign-up, sign-in and the token check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from iotledger.api.auth import Principal
from iotledger.api.clients import client_address
from iotledger.api.openapi import raises
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
from iotledger.bootstrap import Services
from iotledger.domain.errors import Conflict, TooManyRequests
from iotledger.domain.users import InvalidCredentials

TOKEN_TTL = timedelta(hours=24)


class RegisterBody(msgspec.Struct):
    username: Username
    password: Password
    email: Email | None = None


class RegisterReply(msgspec.Struct):
    id: UUID
    username: str


class LoginBody(msgspec.Struct):
    username: LoginName
    password: LoginPassword


class LoginReply(msgspec.Struct):
    token: str


class ClaimsView(msgspec.Struct):
    sub: str
    user_id: UUID
    exp: int


class ProtectedReply(msgspec.Struct):
    claims: ClaimsView


class LambdaUsersController(Controller):
    tags = ["Lambda IoT Core: users"]

    @post("/register", status_code=201, opt=raises(Conflict))
    async def register(
        self, data: JSONBody[RegisterBody], services: NamedDependency[Services]
    ) -> RegisterReply:
        user = await sign_up(services, data.username, data.email, data.password)
        return RegisterReply(id=user.id, username=user.username)

    @post("/login", status_code=200, opt=raises(InvalidCredentials, TooManyRequests))
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginBody],
        services: NamedDependency[Services],
    ) -> LoginReply:
        user = await sign_in(
            services,
            services.users.by_username,
            data.username,
            data.password,
            client_address(request, services.settings.trusted_proxies),
        )
        return LoginReply(token=services.tokens.issue(user.id, user.username, now(), TOKEN_TTL))

    @get("/protected")
    async def protected(self, principal: NamedDependency[Principal]) -> ProtectedReply:
        return ProtectedReply(
            claims=ClaimsView(sub=principal.username, user_id=principal.user_id, exp=principal.exp)
        )
