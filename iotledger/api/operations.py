"""What operators and orchestrators ask: is this process ready, and its metrics."""

from __future__ import annotations

import asyncio
from typing import Literal

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from iotledger.adapters.mqtt.link import MqttLink, Publisher
from iotledger.adapters.observability.metrics import CONTENT_TYPE, exposition
from iotledger.adapters.postgres.projection_status import ProjectionStatus, State
from iotledger.bootstrap import Services

Up = Literal["up", "down"]
READY_STATES: frozenset[State] = frozenset({"running", "standby"})


class ProjectionReadiness(msgspec.Struct):
    position: int
    lag: int
    state: State


class ReadyReply(msgspec.Struct):
    status: Literal["ready", "unready"]
    database: Up
    broker: Literal["up", "down", "none"]
    projections: dict[str, ProjectionReadiness]


def broker_state(publisher: Publisher) -> Literal["up", "down", "none"]:
    if not isinstance(publisher, MqttLink):
        return "none"
    return "up" if publisher.connected else "down"


async def readiness(services: Services, timeout: float = 2.5) -> ReadyReply:
    """Unready when the database or the broker is down, or a projection is failing,
    stopped, or more than `IOTLEDGER_READY_MAX_LAG` events behind."""
    statuses: list[ProjectionStatus] = []
    database: Up = "up" if await services.database_probe.reachable() else "down"
    if database == "up":
        try:
            statuses = await asyncio.wait_for(
                asyncio.to_thread(services.projection_statuses), timeout
            )
        except Exception:
            database = "down"
    broker = broker_state(services.publisher)
    max_lag = services.settings.ready_max_lag
    ready = (
        database == "up"
        and broker != "down"
        and all(s.state in READY_STATES and s.lag <= max_lag for s in statuses)
    )
    return ReadyReply(
        status="ready" if ready else "unready",
        database=database,
        broker=broker,
        projections={s.name: ProjectionReadiness(s.position, s.lag, s.state) for s in statuses},
    )


class OperationsController(Controller):
    tags = ["Operations"]

    @get("/ready", responses={503: ResponseSpec(ReadyReply, description="Not ready: see why")})
    async def ready(self, services: NamedDependency[Services]) -> Response[ReadyReply]:
        """200 when this process can serve: database and broker up, projections keeping up."""
        reply = await readiness(services)
        return Response(reply, status_code=200 if reply.status == "ready" else 503)

    @get("/metrics", sync_to_thread=True, include_in_schema=False)
    def metrics(self, services: NamedDependency[Services]) -> Response[bytes]:
        """Prometheus text format."""
        return Response(exposition(services.metrics), media_type=CONTENT_TYPE)
