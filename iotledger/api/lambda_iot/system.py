"""Lambda IoT Core: the public endpoints that say the service is there."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get

from iotledger.bootstrap import Services


class HealthReply(msgspec.Struct):
    status: str


class HelloReply(msgspec.Struct):
    message: str


class SystemController(Controller):
    tags = ["Lambda IoT Core: system"]

    @get("/health")
    async def health(self, services: Services) -> Response[HealthReply]:
        """200 while this process reaches PostgreSQL; 503 within about 2 s when it cannot."""
        if await services.database_probe.reachable():
            return Response(HealthReply(status="ok"))
        return Response(HealthReply(status="unavailable"), status_code=503)

    @get("/hello", sync_to_thread=False)
    def hello(self) -> HelloReply:
        return HelloReply(message="hello from lambdaiot")
