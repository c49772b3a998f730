"""What operators and orchestrators ask: is this process ready, and its metrics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from prometheus_client import CollectorRegistry

from iotledger.adapters.mqtt.link import MqttLink, Publisher
from iotledger.adapters.observability.metrics import CONTENT_TYPE, exposition
from iotledger.adapters.postgres.health import DatabaseProbe
from iotledger.adapters.postgres.projection_status import ProjectionStatus, State
from iotledger.adapters.postgres.runners import ProjectionRunners

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


@dataclass(frozen=True)
class Readiness:
    """What `/ready` asks (the dependency `readiness`): the database, the projections
    (how far, and whether this process's runners run), the broker link of the process."""

    probe: DatabaseProbe
    projections: ProjectionRunners
    publisher: Publisher
    max_lag: int
    """`IOTLEDGER_READY_MAX_LAG`"""

    async def check(self, timeout: float = 2.5) -> ReadyReply:
        """Unready when the database or the broker is down, or a projection is failing,
        stopped, or more than `max_lag` events behind."""
        statuses: list[ProjectionStatus] = []
        database: Up = "up" if await self.probe.reachable() else "down"
        if database == "up":
            try:
                statuses = await asyncio.wait_for(
                    asyncio.to_thread(self.projections.statuses), timeout
                )
            except Exception:
                database = "down"
        broker = broker_state(self.publisher)
        ready = (
            database == "up"
            and broker != "down"
            and all(s.state in READY_STATES and s.lag <= self.max_lag for s in statuses)
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
    async def ready(self, readiness: NamedDependency[Readiness]) -> Response[ReadyReply]:
        """200 when this process can serve: database and broker up, projections keeping up."""
        reply = await readiness.check()
        return Response(reply, status_code=200 if reply.status == "ready" else 503)

    @get("/metrics", sync_to_thread=True, include_in_schema=False)
    def metrics(self, metrics: NamedDependency[CollectorRegistry]) -> Response[bytes]:
        """Prometheus text format."""
        return Response(exposition(metrics), media_type=CONTENT_TYPE)
