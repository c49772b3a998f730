"""What the MQTT adapter must know about devices on every message, without asking every time.

At thousands of messages a second, looking each device up in the event store
would cost more than storing the reading. `DeviceDirectory` remembers, for a
few seconds, which devices and sensors exist (and each device's status), looked
up in the event store (authoritative, so a device discovered a moment ago is
found). Concurrent lookups of one id share one query. A device unknown a moment
ago is looked up again after `miss_ttl`, so a message that overtook its
device's discovery only waits that long. What it finds of a batch's devices is what
the tenancy rule of MQTT readings (`readings_visible`) is fed (`CachedOwners`).

`Presence` remembers when each device was last heard from and writes it to
PostgreSQL in one statement every so often, for the device checks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

import msgspec

from iotledger.application.ledger import Ledger
from iotledger.domain.devices import FLEET, ComponentKind
from iotledger.domain.errors import NotFound
from iotledger.domain.readings import Owners
from iotledger.domain.vocabulary import DeviceStatus

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")


class KnownDevice(msgspec.Struct, frozen=True):
    id: UUID
    owner: UUID | None
    status: DeviceStatus


class KnownSensor(msgspec.Struct, frozen=True):
    id: UUID
    device_id: UUID
    sensor_type: str


class SingleFlight(Generic[K, V]):
    """One call per key at a time: concurrent callers for a key share its outcome."""

    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        pending = self._calls.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._calls[key] = future
        try:
            value = await call()
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: each waiter re-raises it itself
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._calls[key]
        future.set_result(value)
        return value


class _Cache(Generic[K, V]):
    """Values by key for `ttl` seconds (absent ones for `miss_ttl`); one load per key at a time."""

    def __init__(self, load: Callable[[K], V | None], ttl: float, miss_ttl: float) -> None:
        self._load = load
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._entries: dict[K, tuple[float, V | None]] = {}
        self._loads: SingleFlight[K, V | None] = SingleFlight()

    async def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return await self._loads.run(key, lambda: self._fetch(key))

    async def _fetch(self, key: K) -> V | None:
        value = await asyncio.to_thread(self._load, key)
        self.put(key, value)
        return value

    def put(self, key: K, value: V | None) -> None:
        lifetime = self._ttl if value is not None else self._miss_ttl
        self._entries[key] = (time.monotonic() + lifetime, value)
        if len(self._entries) > 100_000:
            self._evict()

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def _evict(self) -> None:
        now = time.monotonic()
        self._entries = {k: e for k, e in self._entries.items() if e[0] > now}


class DeviceDirectory:
    """Which devices and sensors exist, and each device's status, as of a few seconds ago."""

    def __init__(
        self,
        find_device: Callable[[UUID], KnownDevice | None],
        find_sensor: Callable[[UUID], KnownSensor | None],
        *,
        ttl: float = 5.0,
        miss_ttl: float = 1.0,
    ) -> None:
        self._devices: _Cache[UUID, KnownDevice] = _Cache(find_device, ttl, miss_ttl)
        self._sensors: _Cache[UUID, KnownSensor] = _Cache(find_sensor, ttl, miss_ttl)

    async def device(self, device_id: UUID) -> KnownDevice | None:
        return await self._devices.get(device_id)

    async def sensor(self, sensor_id: UUID) -> KnownSensor | None:
        return await self._sensors.get(sensor_id)

    def forget(self, *ids: UUID) -> None:
        """Look these up again next time (a discovery changed them)."""
        for key in ids:
            self._devices.forget(key)
            self._sensors.forget(key)


class CachedOwners:
    """The cached `DeviceOwners` (`application.readings`), beside the batched SQL one:
    whose each device is, as one directory lookup of a batch found them, answered without
    waiting. Built from the devices that lookup returned, not from the directory again:
    a concurrent message may have made it forget one meanwhile (a status report does)."""

    def __init__(self, found: Mapping[UUID, KnownDevice | None]) -> None:
        self._owners = {device_id: d.owner for device_id, d in found.items() if d is not None}

    def owners(self, device_ids: Collection[UUID]) -> Owners:
        return {i: self._owners[i] for i in device_ids if i in self._owners}


class Presence:
    """When each device was last heard from, written in batches."""

    def __init__(self, write: Callable[[dict[UUID, datetime]], None]) -> None:
        self._write = write
        self._heard: dict[UUID, datetime] = {}

    def heard(self, device_id: UUID, at: datetime) -> None:
        self._heard[device_id] = at

    async def flush(self) -> None:
        if not self._heard:
            return
        heard, self._heard = self._heard, {}
        try:
            await asyncio.to_thread(self._write, heard)
        except Exception:
            log.exception("recording when %d devices were last heard from failed", len(heard))
            for device_id, at in heard.items():  # keep them for the next flush
                self._heard.setdefault(device_id, at)

    async def run(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.flush()


def ledger_directory(ledger: Ledger, **options: float) -> DeviceDirectory:
    """A directory that looks devices and sensors up in the event store."""

    def find_device(device_id: UUID) -> KnownDevice | None:
        try:
            device = ledger.device_itself(device_id)
        except NotFound:
            return None
        return KnownDevice(device.id, device.owner, device.status)

    def find_sensor(sensor_id: UUID) -> KnownSensor | None:
        try:
            device, sensor = ledger.component(ComponentKind.SENSOR, sensor_id, FLEET)
        except NotFound:
            return None
        return KnownSensor(sensor_id, device.id, sensor.component_type)

    return DeviceDirectory(find_device, find_sensor, **options)
