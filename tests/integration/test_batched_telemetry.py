"""Batched telemetry: a JSON array of readings in one request or MQTT message is one unit.

All of it is stored, in one append, or none of it; a redelivered batch stores nothing
twice. Over REST through the application `serve` runs (the intake lane in front of
Litestar; `test_intake` holds the two alike), over MQTT through the machine's Mosquitto.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from iotledger.application.readings import DeleteReading
from iotledger.bootstrap import App
from tests.support.identity import register_and_login
from tests.support.ledger import event_count
from tests.support.mqtt import World
from tests.support.telemetry import is_telemetry_error, new_telemetry_device
from tests.support.waiting import eventually

Client = TestClient[Any]


def readings(count: int, prefix: str = "r") -> list[dict[str, Any]]:
    return [
        {
            "telemetry_type": "environment" if n % 2 else "power",
            "payload": {"n": n, "site": "greenhouse"},
            "recorded_at": f"2025-08-22T12:{n // 60 % 60:02d}:{n % 60:02d}+02:00",
            "id": f"{prefix}-{n}",
        }
        for n in range(count)
    ]


@pytest.fixture
def device(client: Client, headers: dict[str, str]) -> str:
    return str(new_telemetry_device(client, headers)["id"])


def post(client: Client, device: str, body: Any, head: dict[str, str]) -> Any:
    return client.post(f"/api/v1/devices/{device}/telemetry", json=body, headers=head)


def listed(client: Client, device: str, head: dict[str, str]) -> list[Any]:
    response = client.get(f"/api/v1/devices/{device}/telemetry?limit=100", headers=head)
    assert response.status_code == 200
    return list(response.json())


# --- REST ------------------------------------------------------------------------------


def test_a_batch_is_stored_whole_and_answered_with_the_stored_readings(
    client: Client, headers: dict[str, str], device: str
) -> None:
    batch = readings(3)
    response = post(client, device, batch, headers)
    assert response.status_code == 201, response.text
    answered = response.json()
    assert [(r["telemetry_type"], r["payload"]) for r in answered] == [
        (r["telemetry_type"], r["payload"]) for r in batch
    ]
    assert [r["recorded_at"] for r in answered] == [
        "2025-08-22T10:00:00Z",
        "2025-08-22T10:00:01Z",
        "2025-08-22T10:00:02Z",
    ]
    assert sorted(r["id"] for r in listed(client, device, headers)) == sorted(
        r["id"] for r in answered
    )


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"payload": [1, 2]}, "[2].payload: Expected `object`, got `array`"),
        ({"telemetry_type": ""}, "[2].telemetry_type: Expected `str` of length >= 1"),
        ({"recorded_at": "2025-08-22T12:00"}, "[2].recorded_at: "),
        ({"payload": {"note": "a\u0000b"}}, "[2]: payload must not contain the NUL character"),
    ],
)
def test_one_bad_reading_refuses_the_whole_batch_naming_it(
    client: Client,
    services: App,
    headers: dict[str, str],
    device: str,
    bad: dict[str, Any],
    named: str,
) -> None:
    batch = readings(4)
    batch[2] |= bad
    before = event_count(services)
    response = post(client, device, batch, headers)
    assert is_telemetry_error(response, 400)
    assert response.json()["error"]["message"].startswith(named)
    assert event_count(services) == before
    assert listed(client, device, headers) == []


def test_an_empty_batch_or_one_past_the_limit_is_refused_and_stores_nothing(
    client: Client, services: App, headers: dict[str, str], device: str
) -> None:
    limit = services.settings.max_batch_readings
    before = event_count(services)
    empty = post(client, device, [], headers)
    assert is_telemetry_error(empty, 400)
    too_many = post(client, device, readings(limit + 1), headers)
    assert is_telemetry_error(too_many, 400)
    assert too_many.json()["error"] == {
        "code": "VALIDATION_ERROR",
        "message": f"a batch holds at most {limit} readings, not {limit + 1}",
    }
    assert event_count(services) == before
    assert post(client, device, readings(limit), headers).status_code == 201


def test_a_redelivered_batch_stores_nothing_twice_and_is_answered_alike(
    client: Client, services: App, headers: dict[str, str], device: str
) -> None:
    first = post(client, device, readings(5), headers)
    assert first.status_code == 201
    after_first = event_count(services)
    again = post(client, device, readings(5), headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert event_count(services) == after_first
    grown = post(client, device, readings(7), headers)  # two new, five redelivered
    assert grown.status_code == 201
    assert grown.json()[:5] == first.json()
    assert len(listed(client, device, headers)) == 7  # (the log's positions may have gaps)


def test_a_batch_repeating_a_deleted_reading_answers_409_naming_it(
    client: Client, services: App, headers: dict[str, str], device: str
) -> None:
    first = post(client, device, readings(2), headers).json()
    services.ledger.delete_reading(DeleteReading(UUID(first[1]["id"]), "test"))
    response = post(client, device, readings(3), headers)
    assert is_telemetry_error(response, 409)
    assert response.json()["error"]["message"] == (
        "[1]: a reading with this id was recorded and has been deleted"
    )
    # the documented exception to all-or-nothing: the new reading is stored all the same
    assert len(listed(client, device, headers)) == 2


def test_a_reading_repeated_within_a_batch_is_stored_once(
    client: Client, headers: dict[str, str], device: str
) -> None:
    (reading,) = readings(1)
    response = post(client, device, [reading, reading], headers)
    assert response.status_code == 201
    first, second = response.json()
    assert first == second
    assert [r["id"] for r in listed(client, device, headers)] == [first["id"]]


def test_a_batch_for_another_users_device_is_refused_as_a_single_reading_is(
    client: Client, services: App, headers: dict[str, str], device: str
) -> None:
    stranger = register_and_login(client)
    before = event_count(services)
    single = post(client, device, readings(1)[0], stranger)
    batch = post(client, device, readings(3), stranger)
    unknown = post(client, str(uuid4()), readings(3), headers)
    assert is_telemetry_error(single, 404)
    assert (batch.status_code, batch.json()) == (single.status_code, single.json())
    assert (unknown.status_code, unknown.json()) == (single.status_code, single.json())
    assert event_count(services) == before


text = st.text(alphabet='abcxyz é°"\\', max_size=6)
ZONES = [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))]


def test_the_openapi_document_describes_one_reading_or_a_batch(client: Client) -> None:
    operation = client.get("/schema/openapi.json").json()["paths"][
        "/api/v1/devices/{device_id}/telemetry"
    ]["post"]
    for schema, item in (
        (operation["requestBody"]["content"]["application/json"]["schema"], "NewTelemetry"),
        (
            operation["responses"]["201"]["content"]["application/json"]["schema"],
            "TelemetryReading",
        ),
    ):
        ref = {"$ref": f"#/components/schemas/{item}"}
        assert schema == {"oneOf": [ref, {"items": ref, "type": "array"}]}


bodies = st.lists(
    st.fixed_dictionaries(
        {
            "telemetry_type": st.sampled_from(["environment", "power"]),
            "payload": st.dictionaries(text, st.integers(-(2**40), 2**40) | text),
            "recorded_at": st.datetimes(
                min_value=datetime(2000, 1, 1),
                max_value=datetime(2100, 1, 1),
                timezones=st.sampled_from(ZONES),
            ).map(datetime.isoformat),
            "id": st.uuids().map(str),
        }
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=bodies)
def test_each_reading_of_a_batch_is_answered_as_its_single_post_is(
    client: Client, headers: dict[str, str], device: str, batch: list[dict[str, Any]]
) -> None:
    response = post(client, device, batch, headers)
    assert response.status_code == 201, response.text
    singles = [post(client, device, reading, headers) for reading in batch]  # redeliveries
    assert [s.status_code for s in singles] == [201] * len(batch)
    assert response.json() == [s.json() for s in singles]


# --- MQTT ------------------------------------------------------------------------------


def test_a_batched_message_is_stored_whole(world: World) -> None:
    device_id = world.new_device()
    handled = world.handled()
    world.device(device_id).publish(world.topics.telemetry(device_id), readings(50))
    stored = eventually(lambda: len(world.readings(device_id)) == 50, what="every reading")
    assert stored
    assert world.handled() == handled + 1  # one message
    payloads = sorted(r.payload["n"] for r in world.readings(device_id))
    assert payloads == list(range(50))


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"payload": [1]}, "invalid"),
        ({"telemetry_type": ""}, "invalid"),
        ({"payload": {"note": "a\u0000b"}}, "unstorable_text"),
        ({"device_id": "00000000-0000-4000-8000-000000000000"}, "device_mismatch"),
    ],
)
def test_one_bad_reading_drops_the_whole_message(
    world: World, bad: dict[str, Any], reason: str
) -> None:
    device_id = world.new_device()
    device = world.device(device_id)
    dropped = world.dropped(reason)
    batch = readings(5)
    batch[3] |= bad
    device.publish(world.topics.telemetry(device_id), batch)
    eventually(lambda: world.dropped(reason) == dropped + 1, what=f"dropped as {reason}")
    device.publish(world.topics.telemetry(device_id), {"telemetry_type": "t", "payload": {"v": 2}})
    (reading,) = eventually(lambda: world.readings(device_id), what="the next message stored")
    assert reading.payload == {"v": 2}


@pytest.mark.parametrize(("size", "reason"), [(0, "invalid"), (1001, "too_many_readings")])
def test_an_empty_message_or_one_past_the_limit_is_dropped(
    world: World, size: int, reason: str
) -> None:
    assert world.services.settings.max_batch_readings == 1000
    device_id = world.new_device()
    device = world.device(device_id)
    dropped = world.dropped(reason)
    device.publish(world.topics.telemetry(device_id), readings(size))
    eventually(lambda: world.dropped(reason) == dropped + 1, what=f"dropped as {reason}")
    device.publish(world.topics.telemetry(device_id), readings(1000))
    page = functools.partial(world.services.views.readings.device_page, device_id, 2000)
    eventually(lambda: len(page()) == 1000, what="the next message stored")


def test_a_redelivered_batched_message_stores_nothing_twice(world: World) -> None:
    device_id = world.new_device()
    device = world.device(device_id)
    handled, duplicates = world.handled(), world.duplicates()
    for _ in range(3):
        device.publish(world.topics.telemetry(device_id), readings(20))
    eventually(  # at least: the session's adapter may still see other tests' redeliveries
        lambda: world.handled() - handled >= 1 and world.duplicates() - duplicates >= 2,
        timeout=30,
        what="one message stored, two counted as duplicates",
    )
    eventually(lambda: len(world.readings(device_id)) == 20, 30, "every reading, once")
