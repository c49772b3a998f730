"""What the device registry's controllers share, in both dialects: who is acting, on
whose devices, and a device or component as its read model has it."""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from msgspec import UnsetType

from iotledger.adapters.postgres.views.devices import PostgresDeviceView
from iotledger.api.auth import Caller, DeviceCaller
from iotledger.api.deps import off_loop
from iotledger.domain.devices import ComponentKind, DeviceAccess, caused_by_device, caused_by_user
from iotledger.domain.errors import DeviceNotFound, NotFound
from iotledger.projections.devices import ComponentSummary, DeviceSummary

T = TypeVar("T")


def cause(caller: Caller) -> str:
    if isinstance(caller, DeviceCaller):
        return caused_by_device(caller.device_id)
    return caused_by_user(caller.user_id)


def access_of(caller: Caller) -> DeviceAccess:
    """A Device Telemetry user: the shared fleet and their own devices; a device: itself."""
    if isinstance(caller, DeviceCaller):
        return DeviceAccess(device_id=caller.device_id)
    return DeviceAccess(user_id=caller.user_id)


def given(value: T | UnsetType) -> T | None:
    """A field of a partial update: None when the client left it out."""
    return None if isinstance(value, UnsetType) else value


def found(value: T | None, missing: type[NotFound]) -> T:
    """The row a read model returned, or `missing`: absent and hidden look the same."""
    if value is None:
        raise missing()
    return value


async def device_summary(
    devices: PostgresDeviceView, device_id: UUID, access: DeviceAccess
) -> DeviceSummary:
    """The device as the devices read model has it, if `access` may see it."""
    return found(await off_loop(devices.device, device_id, access), DeviceNotFound)


async def fleet_component(
    devices: PostgresDeviceView, kind: ComponentKind, component_id: UUID
) -> ComponentSummary:
    """A sensor or actor of the shared fleet, as the devices read model has it."""
    return found(await off_loop(devices.fleet_component, kind, component_id), kind.not_found)
