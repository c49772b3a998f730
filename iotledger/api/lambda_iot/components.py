"""Lambda IoT Core: sensors and actors of the shared fleet's devices.

Sensors and actors are the same shape with the same verbs, so one controller
serves both and each subclass says only its path and kind. A component that
points at an unknown device (or a private one) answers 404; `device_id` in an
update moves the component to that device.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, UnsetType

from iotledger.api.auth import Principal
from iotledger.api.deps import off_loop
from iotledger.api.lambda_iot.wire import Created, ListLimit, Message, offset_of
from iotledger.api.openapi import raises
from iotledger.api.pagination import PageNumber
from iotledger.api.registry import cause, fleet_component, given
from iotledger.api.settle import record
from iotledger.application.clock import now
from iotledger.application.devices import AddComponent, RemoveComponent, UpdateComponent
from iotledger.bootstrap import Services
from iotledger.domain.devices import (
    FLEET,
    Component,
    ComponentChanges,
    ComponentKind,
    DataTypeId,
    Label,
    Name,
)
from iotledger.domain.errors import Conflict, NotFound
from iotledger.domain.instants import lambda_time
from iotledger.projections.devices import ComponentSummary, DeviceProjection


class LambdaComponent(msgspec.Struct):
    id: UUID
    device_id: UUID
    name: str
    type: str
    data_type_id: int
    created_at: datetime
    updated_at: datetime


class NewComponent(msgspec.Struct):
    device_id: UUID
    name: Name
    type: Label
    data_type_id: DataTypeId


class ComponentEdit(msgspec.Struct):
    device_id: UUID | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    type: Label | UnsetType = UNSET
    data_type_id: DataTypeId | UnsetType = UNSET


def lambda_component(component: ComponentSummary) -> LambdaComponent:
    return LambdaComponent(
        id=component.id,
        device_id=component.device_id,
        name=component.name,
        type=component.component_type,
        data_type_id=component.data_type_id,
        created_at=lambda_time(component.created_at),
        updated_at=lambda_time(component.updated_at),
    )


class ComponentsController(Controller):
    """The verbs of `/sensors` and `/actors`; subclasses set `path` and `kind`."""

    kind: ClassVar[ComponentKind]

    @post("/", status_code=201, opt=raises(NotFound, Conflict))
    async def create_component(
        self,
        data: JSONBody[NewComponent],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Created:
        command = AddComponent(
            component_id=uuid4(),
            device_id=data.device_id,
            access=FLEET,
            component=Component(self.kind, data.name, data.type, data.data_type_id),
            by=cause(principal),
            at=now(),
        )
        written = await record(
            services.watch, services.ledger.add_component, command, DeviceProjection
        )
        return Created(id=written.id)

    @get("/")
    async def list_components(
        self,
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        limit: ListLimit = None,
        page: PageNumber = 0,
    ) -> list[LambdaComponent]:
        offset = offset_of(limit, page)
        components = await off_loop(services.devices.fleet_components, self.kind, limit, offset)
        return [lambda_component(component) for component in components]

    @get("/{component_id:str}")
    async def get_component(
        self,
        component_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> LambdaComponent:
        component = await fleet_component(services.devices, self.kind, component_id)
        return lambda_component(component)

    @put("/{component_id:str}", opt=raises(Conflict))
    async def update_component(
        self,
        component_id: FromPath[UUID],
        data: JSONBody[ComponentEdit],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Message:
        changes = ComponentChanges(
            given(data.name), given(data.type), given(data.data_type_id), given(data.device_id)
        )
        command = UpdateComponent(
            self.kind, component_id, FLEET, changes, by=cause(principal), at=now()
        )
        update = services.ledger.update_component
        await record(services.watch, update, command, DeviceProjection)
        return Message(message=f"{self.kind} updated")

    @delete("/{component_id:str}", status_code=200)
    async def delete_component(
        self,
        component_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Message:
        command = RemoveComponent(self.kind, component_id, FLEET, by=cause(principal), at=now())
        remove = services.ledger.remove_component
        await record(services.watch, remove, command, DeviceProjection)
        return Message(message=f"{self.kind} deleted")


class LambdaSensorsController(ComponentsController):
    path = "/sensors"
    tags = ["Lambda IoT Core: sensors"]
    kind = ComponentKind.SENSOR


class LambdaActorsController(ComponentsController):
    path = "/actors"
    tags = ["Lambda IoT Core: actors"]
    kind = ComponentKind.ACTOR
