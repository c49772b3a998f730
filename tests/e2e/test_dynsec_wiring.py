"""`IOTLEDGER_MQTT_AUTH=dynsec` end to end: `iotledger serve` processes manage a Mosquitto
of the module's own, started with nothing but the admin `mosquitto_ctrl dynsec init`
creates; users issue credentials over REST, devices and gateways use them on MQTT.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

import httpx
import pytest
from gmqtt.mqtt.handler import MQTTConnectError

from iotledger.adapters.mqtt.dynsec.control import DynsecControl
from iotledger.adapters.mqtt.topics import Topics
from iotledger.settings import DatabaseUrl, MqttUrl
from tests.support.databases import create_database, drop_database, new_database
from tests.support.dynsec import (
    DynsecBroker,
    Peer,
    as_user,
    missing_prerequisite,
    running_dynsec_broker,
)
from tests.support.identity import unique
from tests.support.network import free_port
from tests.support.processes import Server, environment, run, serving, wait_for_http

GRANTED = 1


class System:
    """A running deployment: its HTTP base, its base topic, the broker's admin URL."""

    def __init__(
        self, base: str, topics: Topics, broker: DynsecBroker, process: Server | None = None
    ) -> None:
        self.base = base
        self.topics = topics
        self.broker = broker
        self.process = process

    def peer(self, username: str | None, password: str | None) -> Peer:
        return Peer(as_user(self.broker.admin, username, password))


@pytest.fixture(scope="module")
def broker() -> Iterator[DynsecBroker]:
    reason = missing_prerequisite()
    if reason is not None:
        pytest.skip(reason)
    with running_dynsec_broker() as running:
        yield running


@pytest.fixture
def database(server_url: DatabaseUrl) -> Iterator[DatabaseUrl]:
    with new_database(server_url) as url:
        yield url


def dynsec_env(database: DatabaseUrl, admin: MqttUrl, topic: str) -> dict[str, str]:
    extra = {"IOTLEDGER_MQTT_AUTH": "dynsec", "IOTLEDGER_MQTT_TOPIC": topic}
    extra["IOTLEDGER_DB_POOL_SIZE"] = "3"  # the shared PostgreSQL has 100 connections
    return environment(database, admin, IOTLEDGER_PORT=str(free_port()), **extra)


def base_of(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['IOTLEDGER_PORT']}"


@pytest.fixture(scope="module")
def system(broker: DynsecBroker, server_url: DatabaseUrl) -> Iterator[System]:
    """One `iotledger serve` (every role) for the module's tests, each on devices of its own."""
    database = create_database(server_url)
    env = dynsec_env(database, broker.admin, f"t{uuid.uuid4().hex[:8]}")
    try:
        with serving(env=env) as process:
            wait_for_http(base_of(env), process)
            topics = Topics(env["IOTLEDGER_MQTT_TOPIC"])
            yield System(base_of(env), topics, broker, process)
    finally:
        drop_database(server_url, database)


def run_async(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, 60))


class User:
    """A signed-in user of the REST API, with a device of their own."""

    def __init__(self, http: httpx.AsyncClient, name: str, device_id: str) -> None:
        self.http = http
        self.name = name
        self.device_id = device_id

    async def credentials(self, device_id: str | None = None) -> tuple[str, str]:
        issued = await self.http.post(f"/api/v1/devices/{device_id or self.device_id}/credentials")
        assert issued.status_code == 201, issued.text
        return issued.json()["username"], issued.json()["password"]

    async def device(self) -> str:
        made = await self.http.post("/api/v1/devices", json={"name": "d", "device_type": "s"})
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    async def telemetry(self, device_id: str | None = None) -> list[Any]:
        path = f"/api/v1/devices/{device_id or self.device_id}/telemetry"
        listed = await self.http.get(path)
        assert listed.status_code == 200, listed.text
        return list(listed.json())


@contextlib.asynccontextmanager
async def signed_in(base: str, name: str | None = None) -> AsyncIterator[User]:
    """A new user with a new device; or, given a name, that user signing in again."""
    account = {"username": name or unique(), "password": "secret123"}
    account["email"] = f"{account['username']}@example.com"
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        if name is None:
            assert (await http.post("/api/v1/auth/register", json=account)).status_code == 201
        login = await http.post("/api/v1/auth/login", json=account)
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        user = User(http, account["username"], "")
        user.device_id = "" if name else await user.device()
        yield user


async def until(check: Any, timeout: float = 10.0) -> Any:
    """The first truthy result of the coroutine function `check`."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.1)
    return result


async def refused(peer: Peer) -> bool:
    try:
        await peer.connect()
    except MQTTConnectError:
        return True
    await peer.close()
    return False


def reading(value: int) -> bytes:
    return f'{{"telemetry_type": "temperature", "payload": {{"celsius": {value}}}}}'.encode()


def test_a_device_publishes_its_own_telemetry_and_it_is_stored(system: System) -> None:
    async def scenario() -> None:
        async with signed_in(system.base) as user:
            device = await system.peer(*await user.credentials()).connect()
            device.publish(system.topics.telemetry(uuid.UUID(user.device_id)), reading(21))
            stored = await until(user.telemetry)
            assert stored[0]["payload"] == {"celsius": 21}
            await device.close()

    run_async(scenario())


def test_a_device_cannot_write_or_listen_for_another_device(system: System) -> None:
    async def scenario() -> None:
        async with signed_in(system.base) as user:
            other = await user.device()
            device = await system.peer(*await user.credentials()).connect()
            device.publish(system.topics.telemetry(uuid.UUID(other)), reading(666))
            device.publish(system.topics.telemetry(uuid.UUID(user.device_id)), reading(1))
            await until(user.telemetry)
            assert await user.telemetry(other) == []
            assert await device.subscribe(system.topics.commands(uuid.UUID(other))) >= 0x80
            assert await device.subscribe(f"{system.topics.base}/#") >= 0x80
            own = system.topics.commands(uuid.UUID(user.device_id))
            assert await device.subscribe(own) == GRANTED
            await device.close()

    run_async(scenario())


def test_anonymous_and_unknown_clients_are_refused(system: System) -> None:
    async def scenario() -> None:
        assert await refused(system.peer(None, None))
        assert await refused(system.peer("device-nobody", "guess"))

    run_async(scenario())


def test_iotledger_links_connect_as_its_service_account_and_nothing_is_warned(
    system: System,
) -> None:
    assert system.process is not None
    output = system.process.output()
    service = f"mqtt://iotledger-{system.topics.base}:***@"
    assert f"MQTT connected to {service}" in output
    assert "MQTT connected to mqtt://admin" not in output
    assert "enforce" not in output  # neither "enforces nothing" nor "nothing enforced"


def test_dynsec_without_a_broker_url_or_with_a_wrong_admin_stops_start_up_in_one_line(
    broker: DynsecBroker, database: DatabaseUrl
) -> None:
    env = dynsec_env(database, as_user(broker.admin, "admin", "wrong"), "t-refused")
    without = {k: v for k, v in env.items() if k != "IOTLEDGER_MQTT_URL"}
    for environment_, setting in ((without, "IOTLEDGER_MQTT_AUTH"), (env, "IOTLEDGER_MQTT_URL")):
        refusal = run("serve", env=environment_)
        assert refusal.returncode != 0
        assert refusal.stderr.strip().splitlines()[-1].startswith(f"iotledger: {setting}")


def test_a_rotated_secret_stops_working_and_the_new_one_works(system: System) -> None:
    async def scenario() -> None:
        async with signed_in(system.base) as user:
            old = await user.credentials()
            connected = await system.peer(*old).connect()
            new = await user.credentials()
            async with asyncio.timeout(5):
                await connected.disconnected.wait()
            assert await refused(system.peer(*old))
            device = await system.peer(*new).connect()
            device.publish(system.topics.telemetry(uuid.UUID(user.device_id)), reading(2))
            assert (await until(user.telemetry))[0]["payload"] == {"celsius": 2}
            await device.close()

    run_async(scenario())


def test_a_revoked_device_is_disconnected_at_once_and_refused_after(system: System) -> None:
    async def scenario() -> None:
        async with signed_in(system.base) as user:
            credentials = await user.credentials()
            connected = await system.peer(*credentials).connect()
            path = f"/api/v1/devices/{user.device_id}/credentials"
            assert (await user.http.delete(path)).status_code == 204
            async with asyncio.timeout(2):
                await connected.disconnected.wait()
            assert await refused(system.peer(*credentials))

    run_async(scenario())


def test_a_deleted_devices_credentials_leave_the_broker(system: System) -> None:
    async def scenario() -> None:
        async with signed_in(system.base) as user:
            credentials = await user.credentials()
            deleted = await user.http.delete(f"/api/v1/devices/{user.device_id}")
            assert deleted.status_code == 204, deleted.text
            assert await refused(system.peer(*credentials))

    run_async(scenario())


def announcement(device_id: uuid.UUID, sensor: uuid.UUID) -> bytes:
    mac = ":".join(device_id.hex[i : i + 2] for i in range(0, 12, 2))
    device = {"id": str(device_id), "name": "n", "description": "d", "location": "l"}
    sensors = [{"id": str(sensor), "name": "s", "type": "temperature", "data_type_id": 1}]
    body = {"mac_address": mac, "device": {**device, "status_id": 1}, "sensors": sensors}
    return httpx.Request("POST", "/", json=body).content


def test_a_gateway_speaks_the_lambda_protocol_and_a_device_cannot(system: System) -> None:
    async def scenario() -> None:
        async with signed_in(system.base) as user:
            registered = await user.http.post("/api/v1/gateways", json={"name": "hall"})
            assert registered.status_code == 201, registered.text
            gateway = system.peer(registered.json()["username"], registered.json()["password"])
            device = await system.peer(*await user.credentials()).connect()
            await gateway.connect()
            sensors = {"device": uuid.uuid4(), "gateway": uuid.uuid4()}
            device.publish(system.topics.discovery, announcement(uuid.uuid4(), sensors["device"]))
            gateway.publish(system.topics.discovery, announcement(uuid.uuid4(), sensors["gateway"]))

            async def visible(sensor: uuid.UUID) -> bool:
                return (await user.http.get(f"/sensors/{sensor}")).status_code == 200

            await until(lambda: visible(sensors["gateway"]))
            assert not await visible(sensors["device"])
            value = b'{"type": "sensor_reading", "sensor_id": "%s", "value": 23.5}'
            gateway.publish(system.topics.base, value % str(sensors["gateway"]).encode())
            path = f"/sensor-readings?sensor_id={sensors['gateway']}"

            async def readings() -> list[Any]:
                return list((await user.http.get(path)).json())

            assert (await until(readings))[0]["value"] == 23.5
            assert await device.subscribe(system.topics.base) >= 0x80
            await asyncio.gather(device.close(), gateway.close())

    run_async(scenario())


async def hand_made(admin: MqttUrl, topics: Topics) -> tuple[str, str]:
    """A client carrying the deployment's marker that no credential of the log explains
    (what a revocation whose broker call was lost leaves behind)."""
    username, password = f"device-{uuid.uuid4()}", "made-by-hand"
    async with DynsecControl(admin) as control:
        marker = f"iotledger {topics.base}"  # `BrokerAccounts.marker`
        await control.call("createClient", username=username, password=password, textname=marker)
    return username, password


def test_a_marked_client_the_log_does_not_know_is_deleted_soon_after_a_credential_change(
    system: System,
) -> None:
    async def scenario() -> None:
        stray = await hand_made(system.broker.admin, system.topics)
        assert not await refused(system.peer(*stray))
        async with signed_in(system.base) as user:
            await user.credentials()
        assert await until(lambda: refused(system.peer(*stray)), timeout=10)

    run_async(scenario())


@contextlib.contextmanager
def lone_api(env: dict[str, str]) -> Iterator[Server]:
    with serving("--role", "api", env=env) as process:
        wait_for_http(base_of(env), process)
        yield process


def test_what_the_broker_missed_while_away_is_caught_up_when_iotledger_restarts(
    broker: DynsecBroker, database: DatabaseUrl
) -> None:
    """A lone api process issues and revokes; the broker is away for a revocation and an
    issue; once both are back, the reconciliation deletes the revoked client and reports
    the account whose issue answered 503, which a new issue then fixes."""
    env = dynsec_env(database, broker.admin, f"t{uuid.uuid4().hex[:8]}")
    system = System(base_of(env), Topics(env["IOTLEDGER_MQTT_TOPIC"]), broker)
    assert run("migrate", env=env).returncode == 0
    revoked: tuple[str, str] = ("", "")
    name, unissued = "", ""

    async def while_the_broker_is_away() -> None:
        nonlocal revoked, name, unissued
        async with signed_in(system.base) as user:
            name, revoked = user.name, await user.credentials()
            assert not await refused(system.peer(*revoked))
            unissued = await user.device()
            broker.stop()
            path = f"/api/v1/devices/{user.device_id}/credentials"
            assert (await user.http.delete(path)).status_code == 204
            answer = await user.http.post(f"/api/v1/devices/{unissued}/credentials")
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"]
            assert answer.json()["success"] is False

    async def once_back() -> None:
        assert await until(lambda: refused(system.peer(*revoked)))
        async with signed_in(system.base, name) as user:
            device = await system.peer(*await user.credentials(unissued)).connect()
            await device.close()

    with serving("--role", "projections", env=env):
        with lone_api(env):
            run_async(while_the_broker_is_away())
        broker.start()
        assert not asyncio.run(refused(system.peer(*revoked)))  # the broker's copy: stale
        with lone_api(env) as api:
            run_async(once_back())
            assert "1 accounts are issued but not on the broker" in api.output()
