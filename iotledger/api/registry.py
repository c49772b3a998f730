"""What the device registry's controllers share, in both dialects.

A write runs off the loop and then waits until the devices read model has
applied it, so the same client's next read shows it (read-your-writes).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from msgspec import UnsetType

from iotledger.adapters.postgres.watch import ProjectionWatch
from iotledger.api.auth import Caller, DeviceCaller
from iotledger.api.deps import off_loop
from iotledger.application.service import Written
from iotledger.domain.devices import DeviceAccess, caused_by_device, caused_by_user
from iotledger.domain.errors import NotFound
from iotledger.projections.devices import DeviceProjection

C = TypeVar("C")
T = TypeVar("T")


async def record(watch: ProjectionWatch, write: Callable[[C], Written], command: C) -> Written:
    written = await off_loop(write, command)
    await watch.wait(written.position, DeviceProjection.name)
    return written


def now() -> datetime:
    return datetime.now(UTC)


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


def found(value: T | None, message: str) -> T:
    """The row a read model returned, or NotFound: absent and hidden look the same."""
    if value is None:
        raise NotFound(message)
    return value
