"""The two `DeviceOwners`, which feed the tenancy rule of readings: the batched SQL one
(the COPY appender's batches) and the cached one (MQTT's), answering alike."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from uuid import UUID, uuid4

import psycopg

from iotledger.adapters.mqtt.directory import CachedOwners, ledger_directory
from iotledger.adapters.postgres.views.devices import PostgresDeviceOwners
from iotledger.application.devices import RegisterDevice
from iotledger.application.readings import DeviceOwners
from iotledger.bootstrap import App
from iotledger.domain.vocabulary import DeviceStatus
from iotledger.settings import DatabaseUrl


def registered(services: App, owner: UUID | None) -> UUID:
    """A device of `owner` (None: the shared fleet), shown by the devices read model."""
    command = RegisterDevice(uuid4(), owner, "owned", DeviceStatus.OK, "test", datetime.now(UTC))
    written = services.ledger.register_device(command)
    deadline = time.monotonic() + 10
    while (services.views.devices.position() or 0) < written.position:
        assert time.monotonic() < deadline, "the devices projection never caught up"
        time.sleep(0.01)
    return written.id


def test_the_sql_owners_are_read_in_one_query_for_any_number_of_devices(
    services: App, database_url: DatabaseUrl
) -> None:
    someone = uuid4()
    private, shared, unknown = registered(services, someone), registered(services, None), uuid4()
    with psycopg.connect(str(database_url)) as conn:
        owners = PostgresDeviceOwners(conn).owners([private, shared, unknown])
    assert owners == {private: someone, shared: None}


def test_the_cached_owners_answer_as_the_sql_owners_do(
    services: App, database_url: DatabaseUrl
) -> None:
    someone = uuid4()
    private, shared, unknown = registered(services, someone), registered(services, None), uuid4()
    ids = [private, shared, unknown]
    directory = ledger_directory(services.ledger)
    found = {i: asyncio.run(directory.device(i)) for i in ids}
    cached: DeviceOwners = CachedOwners(found)
    with psycopg.connect(str(database_url)) as conn:
        sql: DeviceOwners = PostgresDeviceOwners(conn)
        for asked in ([private], [shared, unknown], ids):
            assert cached.owners(asked) == sql.owners(asked)
    assert cached.owners(ids) == {private: someone, shared: None}
