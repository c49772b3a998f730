"""Lambda IoT Core: what the API sends devices over MQTT (triggers, actor writes, pings).

A trigger and an actor write are commands to the sensor's or actor's device:
issued (by the caller), published on `T` exactly as the document shows, and
recorded as dispatched once the broker has acknowledged the message; so the
device's command history (`/api/v1/devices/{id}/commands`) holds them too. If
the broker cannot take the message the command is cancelled and the answer is
500 in the Lambda body, as the document says.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from iotledger.adapters.mqtt.link import BrokerUnavailable
from iotledger.api.auth import Principal
from iotledger.api.deps import off_loop
from iotledger.api.errors import error_response
from iotledger.api.openapi import raises
from iotledger.api.registry import cause, fleet_component
from iotledger.api.settle import record
from iotledger.application.clock import now
from iotledger.application.commands import CancelCommand, DispatchCommand, IssueCommand
from iotledger.bootstrap import Services
from iotledger.domain.commands import Delivery
from iotledger.domain.devices import FLEET, ComponentKind
from iotledger.domain.instants import lambda_time
from iotledger.projections.commands import CommandProjection

Action = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
_encode = msgspec.json.Encoder().encode
SYSTEM = "system"


class TriggerBody(msgspec.Struct):
    action: Action = "read"


class WriteBody(msgspec.Struct):
    action: Action
    value: Any = None


class Published(msgspec.Struct):
    status: str
    topic: str


class PingReply(msgspec.Struct):
    timestamp: datetime
    topic: str


class SensorTrigger(msgspec.Struct, tag_field="type", tag="sensor_trigger"):
    sensor_id: UUID
    action: str
    requested_at: datetime


class ActorCommand(msgspec.Struct, tag_field="type", tag="actor_command"):
    actor_id: UUID
    action: str
    value: Any
    requested_at: datetime


class Ping(msgspec.Struct, tag_field="type", tag="ping"):
    timestamp: datetime


PUBLISH_FAILED = 500
"""The document's answer when the broker cannot take a message."""


def publish_failed(request: Request[Any, Any, Any], exc: BrokerUnavailable) -> Response[Any]:
    return error_response(request, PUBLISH_FAILED, str(exc))


async def send_command(
    services: Services,
    principal: Principal,
    device_id: UUID,
    message: SensorTrigger | ActorCommand,
) -> Published:
    """Issue a command, publish it on `T`, and record it dispatched (or cancelled)."""
    payload = msgspec.to_builtins(message)
    name = payload.pop("type")
    del payload["requested_at"]
    command = IssueCommand(
        command_id=uuid4(),
        device_id=device_id,
        access=FLEET,
        command_name=name,
        payload=payload,
        delivery=Delivery.LAMBDA,
        by=cause(principal),
        at=message.requested_at,
    )
    await off_loop(services.ledger.issue_command, command)
    topic = services.topics.base
    try:
        await services.publisher.publish(topic, _encode(message))
    except BrokerUnavailable:
        reason = "the broker could not take it"
        cancel = CancelCommand(command.command_id, reason, SYSTEM, now())
        await record(services.watch, services.ledger.cancel_command, cancel, CommandProjection)
        raise
    dispatch = DispatchCommand(command.command_id, SYSTEM, now())
    await record(services.watch, services.ledger.dispatch_command, dispatch, CommandProjection)
    return Published(status="published", topic=topic)


class MqttActionsController(Controller):
    tags = ["Lambda IoT Core: MQTT"]
    exception_handlers = {BrokerUnavailable: publish_failed}

    @post("/sensors/{sensor_id:str}/trigger", status_code=202, opt=raises(PUBLISH_FAILED))
    async def trigger_sensor(
        self,
        sensor_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        data: JSONBody[TriggerBody | None] = None,
    ) -> Published:
        sensor = await fleet_component(services.devices, ComponentKind.SENSOR, sensor_id)
        action = TriggerBody() if data is None else data
        message = SensorTrigger(sensor_id, action.action, lambda_time(now()))
        return await send_command(services, principal, sensor.device_id, message)

    @post("/actors/{actor_id:str}/write", status_code=202, opt=raises(PUBLISH_FAILED))
    async def write_actor(
        self,
        actor_id: FromPath[UUID],
        data: JSONBody[WriteBody],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Published:
        actor = await fleet_component(services.devices, ComponentKind.ACTOR, actor_id)
        message = ActorCommand(actor_id, data.action, data.value, lambda_time(now()))
        return await send_command(services, principal, actor.device_id, message)

    @get("/mqttping", opt=raises(PUBLISH_FAILED))
    async def mqtt_ping(
        self, services: NamedDependency[Services], principal: NamedDependency[Principal]
    ) -> PingReply:
        message = Ping(timestamp=lambda_time(now()))
        await services.publisher.publish(services.topics.base, _encode(message))
        return PingReply(timestamp=message.timestamp, topic=services.topics.base)
