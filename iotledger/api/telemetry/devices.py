"""Device Telemetry: a user's devices under /api/v1, and their past for auditors.

A device created here is its creator's alone; the shared fleet (the Lambda
dialect's devices) is visible and manageable to every signed-in user. Another
user's device answers 404 on every path, as if it did not exist.

`?as_of=` and `/history` are rebuilt from the event store, not from the read
model: they show what was recorded, also of a deleted device.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import UNSET, UnsetType

from iotledger.api.auth import Principal
from iotledger.api.deps import off_loop
from iotledger.api.identity import delete_device
from iotledger.api.pagination import PAGE_HEADERS, Cursor, Limit, decode_cursor, page_response
from iotledger.api.registry import access_of, cause, device_summary, given
from iotledger.api.settle import record
from iotledger.api.telemetry.wire import (
    HistoryEntry,
    TelemetryDevice,
    history_entries,
    telemetry_device,
)
from iotledger.api.wire import instant
from iotledger.application.clock import now
from iotledger.application.devices import DeleteDevice, RegisterDevice, UpdateDevice
from iotledger.bootstrap import Services
from iotledger.domain.devices import DeviceChanges, Label, Metadata, Name
from iotledger.domain.vocabulary import TelemetryStatus, from_telemetry_status
from iotledger.projections.devices import DeviceProjection


class NewTelemetryDevice(msgspec.Struct):
    name: Name
    device_type: Label
    status: TelemetryStatus = TelemetryStatus.OFFLINE
    metadata: Metadata = {}


class TelemetryDeviceEdit(msgspec.Struct):
    """Fields to change; `metadata` replaces the whole object, as the document shows."""

    name: Name | UnsetType = UNSET
    device_type: Label | UnsetType = UNSET
    status: TelemetryStatus | UnsetType = UNSET
    metadata: Metadata | UnsetType = UNSET


class TelemetryDevicesController(Controller):
    path = "/api/v1/devices"
    tags = ["Device Telemetry: devices"]

    @post("/", status_code=201)
    async def create_device(
        self,
        data: JSONBody[NewTelemetryDevice],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> TelemetryDevice:
        command = RegisterDevice(
            device_id=uuid4(),
            owner=principal.user_id,
            name=data.name,
            device_type=data.device_type,
            status=from_telemetry_status(data.status),
            metadata=data.metadata,
            by=cause(principal),
            at=now(),
        )
        written = await record(
            services.watch, services.ledger.register_device, command, DeviceProjection
        )
        return await self._current(services, written.id, principal)

    @get("/", response_headers=PAGE_HEADERS)
    async def list_devices(
        self,
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        limit: Limit = 10,
        cursor: Cursor = None,
    ) -> Response[list[TelemetryDevice]]:
        (after,) = decode_cursor(DeviceProjection.name, cursor) or (0,)
        devices, more = await off_loop(services.devices.page, access_of(principal), after, limit)
        items = [telemetry_device(device) for device in devices]
        return page_response(items, DeviceProjection.name, limit, None if more is None else [more])

    @get("/{device_id:str}", description="`as_of` (RFC 3339): the device as it was then.")
    async def get_device(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        as_of: FromQuery[str | None] = None,
    ) -> TelemetryDevice:
        moment = instant(as_of, "as_of")
        if moment is None:
            return await self._current(services, device_id, principal)
        rebuild = services.ledger.device_as_of
        return telemetry_device(await off_loop(rebuild, device_id, access_of(principal), moment))

    @patch("/{device_id:str}")
    async def update_device(
        self,
        device_id: FromPath[UUID],
        data: JSONBody[TelemetryDeviceEdit],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> TelemetryDevice:
        changes = DeviceChanges(
            name=given(data.name),
            device_type=given(data.device_type),
            status=None if data.status is UNSET else from_telemetry_status(data.status),
            metadata=given(data.metadata),
        )
        command = UpdateDevice(device_id, access_of(principal), changes, cause(principal), now())
        await record(services.watch, services.ledger.update_device, command, DeviceProjection)
        return await self._current(services, device_id, principal)

    @delete("/{device_id:str}")
    async def delete_device(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> None:
        command = DeleteDevice(device_id, access_of(principal), cause(principal), now())
        await delete_device(services, command)

    @get("/{device_id:str}/history")
    async def device_history(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> list[HistoryEntry]:
        history = services.ledger.device_history
        return history_entries(await off_loop(history, device_id, access_of(principal)))

    async def _current(
        self, services: Services, device_id: UUID, principal: Principal
    ) -> TelemetryDevice:
        device = await device_summary(services.devices, device_id, access_of(principal))
        return telemetry_device(device)
