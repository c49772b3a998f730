"""TLS to the broker: `mqtts://` with `IOTLEDGER_MQTT_CA_FILE`, for every MQTT client.

The broker is a Mosquitto of the test's own whose one listener speaks TLS only, with a
certificate the test made; devices publish over TLS too.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import Iterator

import gmqtt
import msgspec
import psycopg
import pytest

from iotledger.adapters.mqtt.dynsec.control import DynsecControl, DynsecUnavailable
from iotledger.adapters.mqtt.tls import tls_context
from iotledger.settings import DatabaseUrl, load_settings
from tests.support.processes import serving, stop, wait_until
from tests.support.tls import Certificates, TlsMosquitto, certificates, tls_mosquitto

EVENTS = "SELECT count(*) FROM iotledger_events WHERE topic LIKE %s"


@pytest.fixture(scope="module")
def made() -> Iterator[Certificates]:
    with certificates() as made:
        yield made


@pytest.fixture(scope="module")
def broker(made: Certificates) -> Iterator[TlsMosquitto]:
    with tls_mosquitto(made) as started:
        yield started


def over_tls(broker: TlsMosquitto, ca: str) -> dict[str, str]:
    return {"IOTLEDGER_MQTT_URL": str(broker.url), "IOTLEDGER_MQTT_CA_FILE": ca}


def publish(broker: TlsMosquitto, topic: str, message: object) -> None:
    """One message at QoS 1 from a device connected over TLS (verifying the broker)."""

    async def send() -> None:
        device = gmqtt.Client(f"tls-device-{uuid.uuid4().hex[:8]}")
        context = ssl.create_default_context(cafile=broker.certificates.ca)
        await device.connect(broker.url.host, broker.url.port, ssl=context)
        device.publish(topic, msgspec.json.encode(message), qos=1)
        await asyncio.sleep(0.2)
        await device.disconnect()

    asyncio.run(send())


def events(database: DatabaseUrl, topic_like: str) -> int:
    with psycopg.connect(str(database)) as conn:
        row = conn.execute(EVENTS, (topic_like,)).fetchone()
    return int(row[0]) if row else 0


def announcement(sensor: uuid.UUID) -> dict[str, object]:
    device = uuid.uuid4()
    return {
        "mac_address": f"02:00:00:{device.hex[:2]}:{device.hex[2:4]}:{device.hex[4:6]}",
        "device": {
            "id": str(device),
            "name": "tls",
            "description": "",
            "location": "",
            "status_id": 1,
        },
        "sensors": [{"id": str(sensor), "name": "t", "type": "temperature", "data_type_id": 1}],
        "actors": [],
    }


def test_the_mqtt_role_connects_over_tls_and_stores_a_reading_sent_over_tls(
    broker: TlsMosquitto, migrated: tuple[int, dict[str, str]], own_database: DatabaseUrl
) -> None:
    env = {**migrated[1], **over_tls(broker, str(broker.certificates.ca))}
    sensor = uuid.uuid4()
    with serving("--role", "mqtt", env=env) as process:
        wait_until(lambda: "MQTT subscribed" in process.output())
        publish(broker, "lambdaiot/discovery", announcement(sensor))
        wait_until(lambda: events(own_database, "%Sensor%") >= 1)
        reading = {"type": "sensor_reading", "sensor_id": str(sensor), "value": 21.5}
        publish(broker, "lambdaiot", reading)
        wait_until(lambda: events(own_database, "%Recorded") >= 1)
        code, _, output = stop(process)
    assert code == 0, output
    assert "MQTT connected to mqtts://127.0.0.1" in output
    assert "New client connected from 127.0.0.1" in broker.log()


def test_a_broker_certificate_the_ca_did_not_sign_is_an_error_line_and_nothing_connects(
    broker: TlsMosquitto, migrated: tuple[int, dict[str, str]]
) -> None:
    env = {**migrated[1], **over_tls(broker, str(broker.certificates.wrong_ca))}
    env["IOTLEDGER_MQTT_CLIENT_ID"] = client_id = f"wrong-ca-{uuid.uuid4().hex[:8]}"
    with serving("--role", "mqtt", env=env) as process:
        wait_until(lambda: "TLS failed" in process.output())
        code, _, output = stop(process)
    assert code == 0, output
    failed = [line for line in output.splitlines() if "TLS failed" in line]
    assert " ERROR " in failed[0]
    assert "certificate verify failed" in failed[0]
    assert "IOTLEDGER_MQTT_CA_FILE" in failed[0]
    assert "MQTT connected" not in output
    assert client_id not in broker.log()


def test_the_dynsec_control_client_speaks_tls_with_the_configured_ca(broker: TlsMosquitto) -> None:
    def control(ca: str) -> None:
        admin = msgspec.structs.replace(broker.url, username="admin", password="pw")
        env = {**over_tls(broker, ca), "IOTLEDGER_MQTT_URL": str(admin)}
        settings = load_settings(environ=env)
        assert settings.mqtt_url is not None

        async def connect() -> None:
            async with DynsecControl(settings.mqtt_url, tls=tls_context(settings), timeout=3):
                pass

        asyncio.run(connect())

    control(str(broker.certificates.ca))
    with pytest.raises(DynsecUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
        control(str(broker.certificates.wrong_ca))
