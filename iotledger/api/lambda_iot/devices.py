"""Lambda IoT Core: devices of the shared fleet, exactly as the document has them.

The list is public; every other endpoint needs a token. This dialect only ever
sees the shared fleet: a private device's id answers 404 here, as if absent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, UnsetType

from iotledger.api.auth import Principal
from iotledger.api.deps import off_loop
from iotledger.api.identity import delete_device
from iotledger.api.lambda_iot.wire import Created, ListLimit, Message, offset_of
from iotledger.api.pagination import PageNumber
from iotledger.api.registry import cause, device_summary, given
from iotledger.api.settle import record
from iotledger.application.clock import now
from iotledger.application.devices import DeleteDevice, RegisterDevice, UpdateDevice
from iotledger.bootstrap import Services
from iotledger.domain.devices import FLEET, DeviceChanges, Label, Name, Text
from iotledger.domain.instants import lambda_time
from iotledger.domain.vocabulary import STATUS_ID_MAX, STATUS_ID_MIN, from_status_id, status_id
from iotledger.projections.devices import DeviceProjection, DeviceSummary

StatusId = Annotated[int, msgspec.Meta(ge=STATUS_ID_MIN, le=STATUS_ID_MAX)]


class LambdaDevice(msgspec.Struct):
    id: UUID
    name: str
    description: str
    location: str
    status_id: int
    created_at: datetime
    updated_at: datetime


class NewDevice(msgspec.Struct):
    name: Name
    description: Text
    location: Label
    status_id: StatusId


class DeviceEdit(msgspec.Struct):
    name: Name | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    location: Label | UnsetType = UNSET
    status_id: StatusId | UnsetType = UNSET


def lambda_device(device: DeviceSummary) -> LambdaDevice:
    return LambdaDevice(
        id=device.id,
        name=device.name,
        description=device.description,
        location=device.location,
        status_id=status_id(device.status),
        created_at=lambda_time(device.created_at),
        updated_at=lambda_time(device.updated_at),
    )


class LambdaDevicesController(Controller):
    path = "/devices"
    tags = ["Lambda IoT Core: devices"]

    @get("/", summary="List all devices (public)")
    async def list_devices(
        self, services: NamedDependency[Services], limit: ListLimit = None, page: PageNumber = 0
    ) -> list[LambdaDevice]:
        devices = await off_loop(services.devices.fleet, limit, offset_of(limit, page))
        return [lambda_device(device) for device in devices]

    @post("/", status_code=201)
    async def create_device(
        self,
        data: JSONBody[NewDevice],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Created:
        command = RegisterDevice(
            device_id=uuid4(),
            owner=None,
            name=data.name,
            description=data.description,
            location=data.location,
            status=from_status_id(data.status_id),
            by=cause(principal),
            at=now(),
        )
        written = await record(
            services.watch, services.ledger.register_device, command, DeviceProjection
        )
        return Created(id=written.id)

    @get("/{device_id:str}")
    async def get_device(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> LambdaDevice:
        return lambda_device(await device_summary(services.devices, device_id, FLEET))

    @put("/{device_id:str}")
    async def update_device(
        self,
        device_id: FromPath[UUID],
        data: JSONBody[DeviceEdit],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Message:
        changes = DeviceChanges(
            name=given(data.name),
            description=given(data.description),
            location=given(data.location),
            status=None if data.status_id is UNSET else from_status_id(data.status_id),
        )
        command = UpdateDevice(device_id, FLEET, changes, by=cause(principal), at=now())
        await record(services.watch, services.ledger.update_device, command, DeviceProjection)
        return Message(message="device updated")

    @delete("/{device_id:str}", status_code=200)
    async def delete_device(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Message:
        command = DeleteDevice(device_id, FLEET, by=cause(principal), at=now())
        await delete_device(services, command)
        return Message(message="device deleted")
