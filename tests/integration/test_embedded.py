"""The zero-install defaults really start, serve and stop."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path

import gmqtt
import psycopg
import pytest
from gmqtt.mqtt.constants import MQTTv311

from iotledger.adapters.embedded.owner import OwnerFile, process_identity
from iotledger.adapters.embedded.services import (
    EmbeddedBroker,
    EmbeddedPostgres,
    EmbeddedServiceError,
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _postgres_processes_mentioning(path: Path) -> list[str]:
    ps = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True, check=True
    )
    return [line for line in ps.stdout.splitlines() if "postgres" in line and str(path) in line]


def test_embedded_postgres_serves_sql_and_stops_cleanly(outside_tmp: Path) -> None:
    data_dir = outside_tmp / "postgres"
    server = EmbeddedPostgres(data_dir)
    try:
        url = server.start()
        assert url.startswith("postgresql://")
        assert "@127.0.0.1:" in url
        assert url.endswith("/iotledger")
        with psycopg.connect(url, connect_timeout=5) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        assert EmbeddedPostgres(data_dir).start() == url  # reuses the running server
        assert _postgres_processes_mentioning(data_dir)
    finally:
        server.stop()
    assert _postgres_processes_mentioning(data_dir) == []
    server.stop()  # idempotent


async def _relay_qos1(port: int) -> tuple[str, bytes, int]:
    broker = EmbeddedBroker("127.0.0.1", port)
    assert await broker.start() == f"mqtt://127.0.0.1:{port}"
    loop = asyncio.get_running_loop()
    received: asyncio.Future[tuple[str, bytes, int]] = loop.create_future()
    subscribed: asyncio.Future[None] = loop.create_future()

    def on_message(
        client: gmqtt.Client, topic: str, payload: bytes, qos: int, props: object
    ) -> int:
        if not received.done():
            received.set_result((topic, payload, qos))
        return 0

    def on_subscribe(client: gmqtt.Client, mid: int, qos: tuple[int, ...], props: object) -> None:
        if not subscribed.done():
            subscribed.set_result(None)

    subscriber = gmqtt.Client("test-subscriber", optimistic_acknowledgement=False)
    subscriber.on_message = on_message
    subscriber.on_subscribe = on_subscribe
    publisher = gmqtt.Client("test-publisher")
    try:
        await subscriber.connect("127.0.0.1", port, version=MQTTv311)
        subscriber.subscribe("devices/+/telemetry", qos=1)
        await asyncio.wait_for(subscribed, 5)
        await publisher.connect("127.0.0.1", port, version=MQTTv311)
        publisher.publish("devices/d1/telemetry", b'{"t": 21.5}', qos=1)
        return await asyncio.wait_for(received, 5)
    finally:
        await publisher.disconnect()
        await subscriber.disconnect()
        await broker.stop()
        await broker.stop()  # idempotent


def test_embedded_broker_relays_qos1_between_gmqtt_clients() -> None:
    port = _free_port()
    assert asyncio.run(_relay_qos1(port)) == ("devices/d1/telemetry", b'{"t": 21.5}', 1)
    with socket.socket() as probe:  # nothing is left listening
        probe.bind(("127.0.0.1", port))


def test_embedded_broker_reports_a_taken_port() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(EmbeddedServiceError, match="IOTLEDGER_EMBEDDED_MQTT_PORT") as caught:
            asyncio.run(EmbeddedBroker("127.0.0.1", port).start())
    assert str(caught.value) == (
        f"IOTLEDGER_EMBEDDED_MQTT_PORT: port {port} on 127.0.0.1 is already in use"
    )


def test_a_server_is_an_orphan_once_the_process_that_claimed_it_is_gone(tmp_path: Path) -> None:
    owner = OwnerFile(tmp_path / "owner")
    assert owner.orphaned()  # nobody ever claimed it
    child = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "owner").write_text(f"{process_identity(child.pid)}\n")
        assert not owner.orphaned()
        assert not owner.mine()
    finally:
        child.kill()
        child.wait()
    assert owner.orphaned()
    (tmp_path / "owner").write_text(f"{os.getpid()} 0\n")  # our pid, another start time
    assert owner.orphaned()
    owner.claim()
    assert owner.mine()
    assert not owner.orphaned()
    owner.release()
    assert not (tmp_path / "owner").exists()
