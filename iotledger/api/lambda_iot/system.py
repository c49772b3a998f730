"""Lambda IoT Core: the public endpoints that say the service is there.

Load balancers and uptime probes often ask with HEAD: both endpoints answer it
with the status GET would give, and no body.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get, head
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from iotledger.adapters.postgres.health import DatabaseProbe


class HealthReply(msgspec.Struct):
    status: str


class HelloReply(msgspec.Struct):
    message: str


UNREACHABLE = "PostgreSQL cannot be reached"


class SystemController(Controller):
    tags = ["Lambda IoT Core: system"]

    @get("/health", responses={503: ResponseSpec(HealthReply, description=UNREACHABLE)})
    async def health(self, database_probe: NamedDependency[DatabaseProbe]) -> Response[HealthReply]:
        """200 while this process reaches PostgreSQL; 503 within about 2 s when it cannot."""
        if await database_probe.reachable():
            return Response(HealthReply(status="ok"))
        return Response(HealthReply(status="unavailable"), status_code=503)

    @get("/hello", sync_to_thread=False)
    def hello(self) -> HelloReply:
        return HelloReply(message="hello from lambdaiot")

    @head("/health", responses={503: ResponseSpec(None, description=UNREACHABLE)})
    async def health_probe(self, database_probe: NamedDependency[DatabaseProbe]) -> Response[None]:
        """HEAD /health: the status GET would give, no body."""
        reachable = await database_probe.reachable()
        return Response(None, status_code=200 if reachable else 503)

    @head("/hello", sync_to_thread=False, status_code=200)
    def hello_probe(self) -> None:
        """HEAD /hello: 200, no body."""
