"""Each device's own topics, with the real Mosquitto and real MQTT clients playing devices.

Telemetry in, commands out, acknowledgements and status in; commands wait for
an offline device and go out when it comes online, unless they expired first.
"""

from __future__ import annotations

import time
from uuid import UUID

import pytest

from tests.support.mqtt import World
from tests.support.waiting import eventually

Headers = dict[str, str]


def test_telemetry_from_a_device_is_stored_as_its_reading(world: World) -> None:
    device_id = world.new_device()
    world.device(device_id).publish(
        world.topics.telemetry(device_id),
        {
            "telemetry_type": "environment",
            "payload": {"temperature": 22.5, "humidity": 60},
            "recorded_at": "2025-08-22T12:34:56Z",
        },
    )
    (reading,) = eventually(lambda: world.readings(device_id), what="the reading")
    assert reading.telemetry_type == "environment"
    assert reading.payload == {"temperature": 22.5, "humidity": 60}
    assert reading.recorded_at.isoformat() == "2025-08-22T12:34:56+00:00"


def test_a_redelivered_telemetry_message_is_stored_once(world: World) -> None:
    device_id = world.new_device()
    device = world.device(device_id)
    message = {"telemetry_type": "power", "payload": {"watts": 7}, "id": "reading-1"}
    handled, duplicates = world.handled(), world.duplicates()
    for _ in range(3):
        device.publish(world.topics.telemetry(device_id), message)
    eventually(
        lambda: world.handled() > handled and world.duplicates() - duplicates == 2,
        what="one delivery stored, two counted as duplicates",
    )
    eventually(lambda: world.readings(device_id), what="the reading")
    assert len(world.readings(device_id)) == 1


def test_a_command_waits_for_an_offline_device_and_goes_out_when_it_comes_online(
    world: World,
) -> None:
    device_id = world.new_device(status="offline")
    device = world.device(device_id)
    command_id = world.command(device_id)
    time.sleep(0.3)  # several dispatcher rounds: none may send to an offline device
    assert device.messages(world.topics.commands(device_id)) == []
    assert world.command_status(device_id, command_id)["status"] == "pending"
    device.publish(world.topics.status(device_id), {"status": "online"})
    (sent,) = eventually(lambda: device.messages(world.topics.commands(device_id)), what="it")
    assert set(sent) == {"id", "command_name", "payload", "issued_at"}
    assert (sent["id"], sent["command_name"], sent["payload"]) == (
        command_id,
        "restart",
        {"delay": 5},
    )
    assert sent["issued_at"].endswith("Z")
    dispatched = eventually(
        lambda: (c := world.command_status(device_id, command_id))["state"] == "dispatched" and c
    )
    assert dispatched["status"] == "pending", "the document knows no other word before the end"
    assert world.status_of(device_id) == "online"


def test_a_device_acknowledges_and_reports_a_command_executed(world: World) -> None:
    device_id = world.new_device(status="online")
    device = world.device(device_id)
    command_id = world.command(device_id)
    eventually(lambda: device.messages(world.topics.commands(device_id)), what="the command")
    ack = f"{world.topics.commands(device_id)}/{command_id}/ack"
    device.publish(ack, {"status": "acknowledged"})
    acknowledged = eventually(
        lambda: (c := world.command_status(device_id, command_id))["state"] == "acknowledged" and c
    )
    assert acknowledged["status"] == "pending"
    device.publish(ack, {"status": "executed", "executed_at": "2025-08-22T12:40:00Z", "result": 1})
    done = eventually(
        lambda: (c := world.command_status(device_id, command_id))["status"] == "executed" and c
    )
    assert (done["executed_at"], done["result"]) == ("2025-08-22T12:40:00Z", 1)
    path = f"/api/v1/devices/{device_id}/commands/{command_id}/history"
    history = world.client.get(path, headers=world.headers).json()
    assert [h["type"] for h in history] == [
        "Command.Issued",
        "Command.Dispatched",
        "Command.Acknowledged",
        "Command.Executed",
    ]
    assert history[3]["caused_by"] == f"device:{device_id}"


def test_a_device_reports_a_command_failed(world: World) -> None:
    device_id = world.new_device(status="online")
    device = world.device(device_id)
    command_id = world.command(device_id)
    eventually(lambda: device.messages(world.topics.commands(device_id)), what="the command")
    ack = f"{world.topics.commands(device_id)}/{command_id}/ack"
    device.publish(ack, {"status": "failed", "result": {"error": "jammed"}})
    failed = eventually(
        lambda: (c := world.command_status(device_id, command_id))["status"] == "failed" and c
    )
    assert failed["result"] == {"error": "jammed"}
    assert "executed_at" in failed


def test_an_expired_command_is_never_sent(world: World) -> None:
    device_id = world.new_device(status="offline")
    device = world.device(device_id)
    stale = world.command(device_id, ttl_seconds=1, command_name="stale")
    fresh = world.command(device_id, command_name="fresh")
    expired = eventually(
        lambda: (c := world.command_status(device_id, stale))["state"] == "expired" and c,
        timeout=5,
    )
    assert expired["status"] == "failed"
    assert expired["reason"] == "its time to live passed before it was sent"
    device.publish(world.topics.status(device_id), {"status": "online"})
    eventually(lambda: world.command_status(device_id, fresh)["state"] == "dispatched")
    sent = [m["id"] for m in device.messages(world.topics.commands(device_id))]
    assert sent == [fresh]


def test_any_message_from_a_lost_device_brings_it_online_and_its_commands_out(
    world: World,
) -> None:
    device_id = world.new_device(status="offline")
    device = world.device(device_id)
    command_id = world.command(device_id)
    device.publish(world.topics.telemetry(device_id), {"telemetry_type": "t", "payload": {}})
    eventually(lambda: world.status_of(device_id) == "online", what="online")
    (sent,) = eventually(lambda: device.messages(world.topics.commands(device_id)), what="it")
    assert sent["id"] == command_id


def test_a_devices_will_says_it_went_offline(world: World) -> None:
    device_id = world.new_device(status="online")
    device = world.device(device_id, will=True)
    device.vanish()
    eventually(lambda: world.status_of(device_id) == "offline", what="offline")


def test_a_command_is_sent_again_when_its_device_comes_back_without_answering(
    world: World,
) -> None:
    device_id = world.new_device(status="online")
    device = world.device(device_id)
    command_id = world.command(device_id)
    topic = world.topics.commands(device_id)
    eventually(lambda: device.messages(topic), what="the first delivery")
    eventually(lambda: world.command_status(device_id, command_id)["state"] == "dispatched")
    device.publish(world.topics.status(device_id), {"status": "offline"})
    eventually(lambda: world.status_of(device_id) == "offline", what="offline")
    device.publish(world.topics.status(device_id), {"status": "online"})
    twice = eventually(lambda: len(device.messages(topic, id=command_id)) == 2, what="again")
    assert twice


def test_a_message_naming_another_device_or_an_unknown_one_is_dropped(world: World) -> None:
    device_id, other = world.new_device(), world.new_device()
    device = world.device(device_id)
    before = world.dropped("device_mismatch"), world.dropped("unknown_device")
    message = {"telemetry_type": "t", "payload": {"v": 1}, "device_id": str(other)}
    device.publish(world.topics.telemetry(device_id), message)
    unknown = UUID("00000000-0000-4000-8000-000000000000")
    device.publish(world.topics.telemetry(unknown), {"telemetry_type": "t", "payload": {}})
    eventually(
        lambda: (
            (world.dropped("device_mismatch"), world.dropped("unknown_device"))
            == (before[0] + 1, before[1] + 1)
        ),
        what="both dropped",
    )
    assert world.readings(device_id) == world.readings(other) == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json at all", "not_json"),
        (b'{"telemetry_type": 5, "payload": {}}', "invalid"),
        (b'{"telemetry_type": "t", "payload": [1]}', "invalid"),
        (b'{"telemetry_type": "t", "payload": {}, "recorded_at": "noon"}', "invalid"),
        (b'{"telemetry_type": "", "payload": {}}', "invalid"),
        (b"[]", "invalid"),
    ],
)
def test_garbage_is_dropped_and_the_adapter_keeps_serving(
    world: World, payload: bytes, reason: str
) -> None:
    device_id = world.new_device()
    device = world.device(device_id)
    dropped = world.dropped(reason)
    device.publish(world.topics.telemetry(device_id), payload)
    eventually(lambda: world.dropped(reason) == dropped + 1, what=f"dropped as {reason}")
    device.publish(world.topics.telemetry(device_id), {"telemetry_type": "t", "payload": {"v": 2}})
    (reading,) = eventually(lambda: world.readings(device_id), what="the next message stored")
    assert reading.payload == {"v": 2}


def test_an_answer_for_an_unknown_command_is_dropped(world: World) -> None:
    device_id = world.new_device()
    device = world.device(device_id)
    dropped = world.dropped("unknown_command")
    ack = f"{world.topics.commands(device_id)}/00000000-0000-4000-8000-000000000001/ack"
    device.publish(ack, {"status": "executed"})
    eventually(lambda: world.dropped("unknown_command") == dropped + 1, what="dropped")
