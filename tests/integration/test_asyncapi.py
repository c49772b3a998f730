"""`/schema/asyncapi.json` is a valid AsyncAPI 3.0 document of both MQTT protocols: every
topic under the configured base topic, every message in its direction, and payload
schemas that accept what devices and iotledger really send.

Validated against the official AsyncAPI 3.0.0 JSON Schema (`tests/data/asyncapi/`).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import jsonschema
import msgspec
import pytest
from litestar.testing import TestClient

from iotledger.adapters.mqtt.topics import Channel
from iotledger.api.lambda_iot.mqtt_actions import ActorCommand, Ping, SensorTrigger
from iotledger.projections.device_checks import CheckRequest
from iotledger.projections.dispatcher import CommandMessage
from iotledger.settings import Settings

ASYNCAPI_SCHEMA = Path(__file__).parents[1] / "data" / "asyncapi" / "asyncapi-3.0.0.json"
NOW = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)

Client = TestClient[object]


@pytest.fixture(scope="module")
def official() -> dict[str, Any]:
    return dict(json.loads(ASYNCAPI_SCHEMA.read_text()))


@pytest.fixture
def document(client: Client) -> dict[str, Any]:
    response = client.get("/schema/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return dict(response.json())


def test_the_document_is_valid_asyncapi_3(
    document: dict[str, Any], official: dict[str, Any]
) -> None:
    assert document["asyncapi"] == "3.0.0"
    jsonschema.validate(document, official)


def test_the_official_schema_catches_a_broken_document(
    document: dict[str, Any], official: dict[str, Any]
) -> None:
    broken = copy.deepcopy(document)
    next(iter(broken["operations"].values()))["action"] = "publish"  # AsyncAPI 2's word
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, official)


def test_every_topic_is_a_channel_under_the_configured_base_topic(
    document: dict[str, Any], settings: Settings
) -> None:
    base = settings.mqtt_topic
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        base,
        f"{base}/discovery",
        f"{base}/devices/{{device_id}}/telemetry",
        f"{base}/devices/{{device_id}}/commands",
        f"{base}/devices/{{device_id}}/commands/{{command_id}}/ack",
        f"{base}/devices/{{device_id}}/status",
        f"{base}/devices/{{device_id}}/claim",
    }
    assert set(document["channels"]) == {channel.value for channel in Channel}
    ack = next(c for c in document["channels"].values() if c["address"].endswith("/ack"))
    assert set(ack["parameters"]) == {"device_id", "command_id"}


def directions(document: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """Per action, the (address, message name) pairs of the operations."""
    found: dict[str, set[tuple[str, str]]] = {"send": set(), "receive": set()}
    for operation in document["operations"].values():
        channel = resolve(document, operation["channel"])
        for ref in operation["messages"]:
            found[operation["action"]].add((channel["address"], resolve(document, ref)["name"]))
    return found


def test_each_message_travels_in_its_direction(
    document: dict[str, Any], settings: Settings
) -> None:
    base, device = settings.mqtt_topic, f"{settings.mqtt_topic}/devices/{{device_id}}"
    assert directions(document) == {
        "receive": {
            (base, "sensorReading"),
            (base, "deviceCheckResponse"),
            (f"{base}/discovery", "discovery"),
            (f"{device}/telemetry", "telemetry"),
            (f"{device}/commands/{{command_id}}/ack", "commandAck"),
            (f"{device}/status", "status"),
            (f"{device}/claim", "claim"),
        },
        "send": {
            (base, "deviceCheckRequest"),
            (base, "sensorTrigger"),
            (base, "actorCommand"),
            (base, "ping"),
            (f"{device}/commands", "command"),
        },
    }


DEVICE_MESSAGES = [
    ("sensorReading", {"type": "sensor_reading", "sensor_id": str(uuid4()), "value": 23.7}),
    ("sensorReading", {"type": "sensor_value", "sensor_id": str(uuid4()), "value": "1"}),
    (
        "deviceCheckResponse",
        {"type": "device_check_response", "device_id": str(uuid4()), "status": "ok"},
    ),
    (
        "discovery",
        {
            "mac_address": "00:11:22:33:44:55",
            "device": {"id": str(uuid4()), "name": "Device Name", "status_id": 1},
            "sensors": [
                {"id": str(uuid4()), "name": "T", "type": "temperature", "data_type_id": 1}
            ],
            "actors": [{"id": str(uuid4()), "name": "LED", "type": "led", "data_type_id": 2}],
        },
    ),
    ("telemetry", {"telemetry_type": "climate", "payload": {"t": 21.5}}),
    ("telemetry", [{"telemetry_type": "climate", "payload": {"t": 21.5}, "id": 7}]),
    ("commandAck", {"status": "executed", "executed_at": "2026-01-14T10:00:00Z", "result": {}}),
    ("status", {"status": "offline"}),
    ("claim", {"secret_key": "s3cret", "duration_ms": 60000}),
]
WRONG_MESSAGES = [
    ("sensorReading", {"type": "ping", "sensor_id": str(uuid4()), "value": 1}),
    ("sensorReading", {"sensor_id": str(uuid4()), "value": 1}),
    ("commandAck", {"status": "done"}),
    ("status", {"status": "asleep"}),
    ("telemetry", {"payload": {}}),
    ("claim", {"secret_key": "", "duration_ms": 60000}),
]


def payload_schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema = document["components"]["messages"][name]["payload"]
    return {**schema, "components": document["components"]}


@pytest.mark.parametrize(("name", "payload"), DEVICE_MESSAGES)
def test_what_devices_send_fits_the_documented_payload(
    document: dict[str, Any], name: str, payload: Any
) -> None:
    jsonschema.validate(payload, payload_schema(document, name))


@pytest.mark.parametrize(("name", "payload"), WRONG_MESSAGES)
def test_what_iotledger_drops_does_not_fit_the_documented_payload(
    document: dict[str, Any], name: str, payload: Any
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(payload, payload_schema(document, name))


SERVER_MESSAGES = [
    ("deviceCheckRequest", CheckRequest(uuid4(), NOW)),
    ("sensorTrigger", SensorTrigger(uuid4(), "read", NOW)),
    ("actorCommand", ActorCommand(uuid4(), "write", 1, NOW)),
    ("ping", Ping(NOW)),
    ("command", CommandMessage(uuid4(), "reboot", {"delay": 5}, NOW)),
]


@pytest.mark.parametrize(("name", "message"), SERVER_MESSAGES)
def test_what_iotledger_sends_fits_the_documented_payload(
    document: dict[str, Any], name: str, message: msgspec.Struct
) -> None:
    sent = json.loads(msgspec.json.encode(message))
    jsonschema.validate(sent, payload_schema(document, name))


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """What a local `$ref` (`#/a/b/c`) points at."""
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node
