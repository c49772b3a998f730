"""Lambda IoT Core: sign-up, sign-in and the token check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from iotledger.api.auth import Principal
from iotledger.api.deps import off_loop
from iotledger.api.signin import sign_in
from iotledger.bootstrap import Services
from iotledger.domain.user_service import RegisterUser

TOKEN_TTL = timedelta(hours=24)


class RegisterBody(msgspec.Struct):
    username: Annotated[str, msgspec.Meta(min_length=3, max_length=50)]
    password: Annotated[str, msgspec.Meta(min_length=6, max_length=1024)]
    email: str | None = None


class RegisterReply(msgspec.Struct):
    id: UUID
    username: str


class LoginBody(msgspec.Struct):
    username: Annotated[str, msgspec.Meta(max_length=320)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


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

    @post("/register", status_code=201)
    async def register(
        self, data: JSONBody[RegisterBody], services: NamedDependency[Services]
    ) -> RegisterReply:
        password_hash = await off_loop(services.hasher.hash, data.password)
        command = RegisterUser(
            user_id=uuid4(),
            username=data.username,
            email=data.email,
            password_hash=password_hash,
            at=datetime.now(UTC),
        )
        written = await off_loop(services.ledger.register_user, command)
        await services.watch.wait(written.position, "users")
        return RegisterReply(id=written.id, username=data.username)

    @post("/login", status_code=200)
    async def login(
        self, data: JSONBody[LoginBody], services: NamedDependency[Services]
    ) -> LoginReply:
        user = await sign_in(services, services.users.by_username, data.username, data.password)
        now = datetime.now(UTC)
        return LoginReply(token=services.tokens.issue(user.id, user.username, now, TOKEN_TTL))

    @get("/protected")
    async def protected(self, principal: NamedDependency[Principal]) -> ProtectedReply:
        return ProtectedReply(
            claims=ClaimsView(sub=principal.username, user_id=principal.user_id, exp=principal.exp)
        )
