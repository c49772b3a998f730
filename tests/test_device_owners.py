"""The two `DeviceOwners` that feed the tenancy rule of readings: the batched SQL one
(the COPY appender's) and the MQTT adapter's cache."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from uuid import UUID, uuid4

import psycopg

from iotledger.adapters.mqtt.directory import DeviceDirectory, KnownDevice
from iotledger.adapters.postgres.views.devices import PostgresDeviceOwners
from iotledger.application.devices import RegisterDevice
from iotledger.bootstrap import Services
from iotledger.domain.vocabulary import DeviceStatus
from iotledger.settings import DatabaseUrl


def registered(services: Services, owner: UUID | None) -> UUID:
    """A device of `owner` (None: the shared fleet), shown by the devices read model."""
    command = RegisterDevice(uuid4(), owner, "owned", DeviceStatus.OK, "test", datetime.now(UTC))
    written = services.ledger.register_device(command)
    deadline = time.monotonic() + 10
    while (services.devices.position() or 0) < written.position:
        assert time.monotonic() < deadline, "the devices projection never caught up"
        time.sleep(0.01)
    return written.id


def test_the_sql_owners_are_read_in_one_query_for_any_number_of_devices(
    services: Services, database_url: DatabaseUrl
) -> None:
    someone = uuid4()
    private, shared, unknown = registered(services, someone), registered(services, None), uuid4()
    with psycopg.connect(str(database_url)) as conn:
        owners = PostgresDeviceOwners(conn).owners([private, shared, unknown])
    assert owners == {private: someone, shared: None}


def test_the_cached_owners_are_what_the_directory_last_found_and_never_wait() -> None:
    someone, present, missing = uuid4(), uuid4(), uuid4()
    looked_up: list[UUID] = []

    def find_device(device_id: UUID) -> KnownDevice | None:
        looked_up.append(device_id)
        return KnownDevice(present, someone, DeviceStatus.OK) if device_id == present else None

    directory = DeviceDirectory(find_device, lambda _: None, ttl=0.0, miss_ttl=0.0)
    assert directory.owners([present, missing]) == {}  # not looked up yet: unknown to it
    assert looked_up == []

    async def look_up() -> None:
        for device_id in (present, missing):
            await directory.device(device_id)

    asyncio.run(look_up())
    assert directory.owners([present, missing]) == {present: someone}  # expired, still known
    assert looked_up == [present, missing]
    directory.forget(present)
    assert directory.owners([present]) == {}
