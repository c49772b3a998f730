"""Text no read model can store (a NUL character, a lone surrogate) is refused at the edge.

PostgreSQL `text` and `jsonb` refuse `\\u0000`; JSON allows it anywhere. Each request
below is sent as a client would send it, a raw body with the escape in it: it answers
the dialect's own 400, stores nothing, and the projections are not wedged (a device
made afterwards answers at once). Over MQTT, such a message is dropped and counted.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from iotledger.bootstrap import App
from tests.support.lambda_iot import announcement
from tests.support.mqtt import Adapter, Device, LoopThread, devices

Client = TestClient[Any]
Headers = dict[str, str]
NUL = "\\u0000"  # as it travels in JSON: the six characters of the escape
SURROGATE = "\\ud800"
JSON = {"Content-Type": "application/json"}


def event_count(services: App) -> int:
    return services.ledger.recorder.max_notification_id() or 0


def post_raw(client: Client, path: str, body: str, headers: Headers | None = None) -> Any:
    return client.post(path, content=body.encode(), headers={**JSON, **(headers or {})})


def is_telemetry_400(response: Any) -> bool:
    body = response.json()
    return response.status_code == 400 and body == {
        "success": False,
        "error": {"code": "VALIDATION_ERROR", "message": body["error"]["message"]},
    }


def is_lambda_400(response: Any) -> bool:
    body = response.json()
    return response.status_code == 400 and set(body) == {"error"} and body["error"]


def a_new_device_answers_at_once(client: Client, headers: Headers) -> None:
    """The devices projection is not wedged: a new device is readable right after it is made."""
    started = time.monotonic()
    created = client.post(
        "/api/v1/devices", json={"name": "after", "device_type": "x"}, headers=headers
    )
    assert created.status_code == 201
    shown = client.get(f"/api/v1/devices/{created.json()['id']}", headers=headers)
    assert shown.status_code == 200
    assert time.monotonic() - started < 2.0


def new_device(client: Client, headers: Headers) -> str:
    response = client.post(
        "/api/v1/devices", json={"name": "d", "device_type": "x"}, headers=headers
    )
    assert response.status_code == 201
    return str(response.json()["id"])


def refused_by_v1(client: Client, services: App, headers: Headers, path: str, body: str) -> None:
    before = event_count(services)
    response = post_raw(client, path, body, headers)
    assert is_telemetry_400(response), response.text
    assert event_count(services) == before
    a_new_device_answers_at_once(client, headers)


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(
    "template",
    [
        '{"name": "pump%s", "device_type": "actor"}',
        '{"name": "pump", "device_type": "actor", "metadata": {"ke%sy": 1}}',
        '{"name": "pump", "device_type": "actor", "metadata": {"a": {"b": ["c", "d%s"]}}}',
        '{"name": "pump", "device_type": "act%sor"}',
    ],
    ids=["name", "metadata-key", "nested-metadata-value", "device-type"],
)
def test_a_v1_device_with_unstorable_text_answers_400_and_stores_nothing(
    client: Client, services: App, module_auth_headers: Headers, template: str, bad: str
) -> None:
    refused_by_v1(client, services, module_auth_headers, "/api/v1/devices", template % bad)


@pytest.mark.parametrize(
    "body",
    [
        '{"command_name": "re\\u0000start", "payload": {}}',
        '{"command_name": "restart", "payload": {"delay": "5\\u0000"}}',
        '{"command_name": "restart", "payload": {"deep": [{"k\\u0000": 1}]}}',
    ],
    ids=["command-name", "payload-value", "payload-nested-key"],
)
def test_a_command_with_a_nul_answers_400_and_stores_nothing(
    client: Client, services: App, module_auth_headers: Headers, body: str
) -> None:
    device = new_device(client, module_auth_headers)
    path = f"/api/v1/devices/{device}/commands"
    refused_by_v1(client, services, module_auth_headers, path, body)


@pytest.mark.parametrize(
    "body",
    [
        '{"telemetry_type": "env", "payload": {"note": "a\\u0000b"}}',
        '{"telemetry_type": "env\\u0000", "payload": {"t": 1}}',
    ],
    ids=["payload", "telemetry-type"],
)
def test_telemetry_with_a_nul_answers_400_and_stores_nothing(
    client: Client, services: App, module_auth_headers: Headers, body: str
) -> None:
    device = new_device(client, module_auth_headers)
    path = f"/api/v1/devices/{device}/telemetry"
    refused_by_v1(client, services, module_auth_headers, path, body)


def test_a_v1_device_update_with_a_nul_answers_400_and_changes_nothing(
    client: Client, services: App, module_auth_headers: Headers
) -> None:
    device = new_device(client, module_auth_headers)
    before = event_count(services)
    body = b'{"metadata": {"site": "a\\u0000"}}'
    response = client.patch(
        f"/api/v1/devices/{device}", content=body, headers={**JSON, **module_auth_headers}
    )
    assert is_telemetry_400(response), response.text
    assert event_count(services) == before
    shown = client.get(f"/api/v1/devices/{device}", headers=module_auth_headers).json()
    assert shown["metadata"] == {}


json_leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_trees = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, min_size=1, max_size=3)
    ),
    max_leaves=8,
)


def with_nul(tree: Any, choice: int) -> Any:
    """The tree with a NUL character put into one of its strings (keys too), or as a
    new leaf where it holds none: `choice` picks which."""
    strings: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in list(node.items()):
                strings.append((node, ("key", key)))
                if isinstance(value, str):
                    strings.append((node, ("value", key)))
                walk(value)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                if isinstance(value, str):
                    strings.append((node, ("value", index)))
                walk(value)

    walk(tree)
    if not strings:
        return {"nul\x00": tree}
    container, (where, at) = strings[choice % len(strings)]
    if where == "key":
        container[f"{at}\x00"] = container.pop(at)
    else:
        container[at] = f"{container[at]}\x00"
    return tree


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=json_trees, choice=st.integers(min_value=0, max_value=50))
def test_a_nul_anywhere_in_device_metadata_answers_400(
    client: Client, services: App, module_auth_headers: Headers, tree: Any, choice: int
) -> None:
    metadata = with_nul({"m": tree}, choice)
    before = event_count(services)
    body = {"name": "pump", "device_type": "actor", "metadata": metadata}
    response = client.post("/api/v1/devices", json=body, headers=module_auth_headers)
    assert is_telemetry_400(response), response.text
    assert event_count(services) == before


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/devices", '{"name": "n%s", "description": "", "location": "", "status_id": 1}'),
        ("/devices", '{"name": "n", "description": "d%s", "location": "", "status_id": 1}'),
        ("/sensors", '{"device_id": "{device}", "name": "s%s", "type": "t", "data_type_id": 1}'),
        ("/actors", '{"device_id": "{device}", "name": "a", "type": "t%s", "data_type_id": 1}'),
    ],
    ids=["device-name", "device-description", "sensor-name", "actor-type"],
)
def test_the_lambda_dialect_answers_its_own_400_and_stores_nothing(
    client: Client, services: App, module_auth_headers: Headers, path: str, template: str
) -> None:
    created = client.post(
        "/devices",
        json={"name": "n", "description": "", "location": "", "status_id": 1},
        headers=module_auth_headers,
    )
    assert created.status_code == 201, created.text
    body = (template % NUL).replace("{device}", created.json()["id"])
    before = event_count(services)
    response = post_raw(client, path, body, module_auth_headers)
    assert is_lambda_400(response), response.text
    assert event_count(services) == before
    a_new_device_answers_at_once(client, module_auth_headers)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/register", '{"username": "ann\\u0000", "password": "secret-password"}'),
        (
            "/api/v1/auth/register",
            '{"username": "ann", "email": "a\\u0000@example.com", "password": "secret-password"}',
        ),
    ],
    ids=["lambda", "v1"],
)
def test_a_sign_up_with_a_nul_answers_400_and_stores_nothing(
    client: Client, services: App, path: str, body: str
) -> None:
    before = event_count(services)
    response = post_raw(client, path, body)
    assert response.status_code == 400, response.text
    assert event_count(services) == before


# --- MQTT -------------------------------------------------------------------------------


@pytest.fixture
def played(mqtt_loop: LoopThread) -> Any:
    with devices(mqtt_loop) as made:
        yield made


def dropped(adapter: Adapter, reason: str = "unstorable_text") -> int:
    return adapter.counters.get(f"dropped.{reason}", 0)


def dropped_when_sent(
    adapter: Adapter, sender: Device, topic: str, payload: Any, reason: str = "unstorable_text"
) -> None:
    """Publish until the adapter drops the message for `reason`, a few times at most.

    Sent again because a closed adapter of an earlier test can keep its persistent
    session in the shared subscription group, and Mosquitto hands it some messages
    (DESIGN.md's trap; tests/integration/test_mqtt_resilience.py leaves two such sessions).
    """
    before = dropped(adapter, reason)
    for _ in range(10):
        sender.publish(topic, payload)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if dropped(adapter, reason) > before:
                return
            time.sleep(0.02)
    raise AssertionError(f"the message on {topic} was never dropped as {reason}")


@pytest.fixture
def sender(played: list[Device], mqtt_loop: LoopThread, mqtt_url: Any) -> Device:
    played.append(Device(mqtt_loop, mqtt_url))
    return played[0]


def test_mqtt_telemetry_with_a_nul_is_dropped_and_counted(
    client: Client,
    services: App,
    module_auth_headers: Headers,
    mqtt_adapter: Adapter,
    sender: Device,
) -> None:
    device = UUID(new_device(client, module_auth_headers))
    topic = services.topics.telemetry(device)
    events = event_count(services)
    for payload in (
        b'{"telemetry_type": "env", "payload": {"note": "a\\u0000b"}}',
        b'{"telemetry_type": "env\\u0000", "payload": {}}',
    ):
        dropped_when_sent(mqtt_adapter, sender, topic, payload)
    assert event_count(services) == events
    assert services.views.readings.device_page(device, 10) == []
    a_new_device_answers_at_once(client, module_auth_headers)


def test_a_lambda_discovery_with_a_nul_is_dropped_and_counted(
    client: Client,
    services: App,
    module_auth_headers: Headers,
    mqtt_adapter: Adapter,
    sender: Device,
) -> None:
    device_id = uuid.uuid4()
    message = announcement(device_id, [uuid.uuid4()], [], name="lamp\x00")
    dropped_when_sent(mqtt_adapter, sender, services.topics.discovery, message)
    assert client.get(f"/devices/{device_id}", headers=module_auth_headers).status_code == 404
    a_new_device_answers_at_once(client, module_auth_headers)


def test_a_command_answer_with_a_nul_is_dropped_and_the_command_waits(
    client: Client,
    services: App,
    module_auth_headers: Headers,
    mqtt_adapter: Adapter,
    sender: Device,
) -> None:
    device = new_device(client, module_auth_headers)
    path = f"/api/v1/devices/{device}/commands"
    command = client.post(
        path, json={"command_name": "restart", "payload": {}}, headers=module_auth_headers
    )
    assert command.status_code == 201
    command_id = command.json()["id"]
    topic = services.topics.ack(UUID(device), UUID(command_id))
    ack = b'{"status": "executed", "result": {"log": "ok\\u0000"}}'
    dropped_when_sent(mqtt_adapter, sender, topic, ack)
    shown = client.get(f"{path}/{command_id}", headers=module_auth_headers).json()
    assert shown["status"] == "pending"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/login", '{"username": "ann\\u0000", "password": "secret-password"}'),
        ("/api/v1/auth/login", '{"email": "a\\u0000@example.com", "password": "secret-password"}'),
    ],
    ids=["lambda", "v1"],
)
def test_a_sign_in_with_a_nul_is_refused_not_an_error(
    client: Client, services: App, path: str, body: str
) -> None:
    response = post_raw(client, path, body)
    assert response.status_code in (400, 401), response.text


def test_a_telemetry_filter_with_a_nul_answers_400_not_an_error(
    client: Client, module_auth_headers: Headers
) -> None:
    device = new_device(client, module_auth_headers)
    path = f"/api/v1/devices/{device}/telemetry?telemetry_type=env%00"
    assert is_telemetry_400(client.get(path, headers=module_auth_headers))


def test_a_lambda_sensor_reading_with_a_nul_is_dropped_and_stores_nothing(
    client: Client,
    services: App,
    module_auth_headers: Headers,
    mqtt_adapter: Adapter,
    sender: Device,
) -> None:
    device = client.post(
        "/devices",
        json={"name": "n", "description": "", "location": "", "status_id": 1},
        headers=module_auth_headers,
    ).json()["id"]
    sensor = client.post(
        "/sensors",
        json={"device_id": device, "name": "s", "type": "temperature", "data_type_id": 1},
        headers=module_auth_headers,
    ).json()["id"]
    events = event_count(services)
    message = f'{{"type": "sensor_reading", "sensor_id": "{sensor}", "value": "2\\u0000"}}'
    dropped_when_sent(mqtt_adapter, sender, services.topics.base, message.encode(), "invalid")
    assert event_count(services) == events
    readings = client.get(f"/sensor-readings?sensor_id={sensor}", headers=module_auth_headers)
    assert readings.json() == []
