"""Lambda IoT Core: the public endpoints that say the service is there.

Load balancers and uptime probes often ask with HEAD: both endpoints answer it
with the status GET would give, and no body.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, get, head


class HealthReply(msgspec.Struct):
    status: str


class HelloReply(msgspec.Struct):
    message: str


class SystemController(Controller):
    tags = ["Lambda IoT Core: system"]

    @get("/health", sync_to_thread=False)
    def health(self) -> HealthReply:
        return HealthReply(status="ok")

    @get("/hello", sync_to_thread=False)
    def hello(self) -> HelloReply:
        return HelloReply(message="hello from lambdaiot")

    @head(["/health", "/hello"], sync_to_thread=False, status_code=200)
    def probe(self) -> None:
        """HEAD of either: 200, no body."""
