"""Lambda IoT Core: sign-up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from iotledger.api.deps import off_loop
from iotledger.bootstrap import Services
from iotledger.domain.ledger import RegisterUser


class RegisterBody(msgspec.Struct, forbid_unknown_fields=False):
    username: Annotated[str, msgspec.Meta(min_length=3, max_length=50)]
    password: Annotated[str, msgspec.Meta(min_length=6, max_length=1024)]
    email: str | None = None


class RegisterReply(msgspec.Struct):
    id: UUID
    username: str


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
