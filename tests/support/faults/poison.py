"""Poison input: each must be refused (REST: a 4xx) or dropped (MQTT), and leave the
system working (a new device answers at once; the load's readings keep being stored).

A poison fault sends its inputs in the middle of the scenario's load, then checks
the system still answers; what was not refused comes back as findings.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from iotledger.api.pagination import encode_cursor
from tests.support.faults.faults import Fault
from tests.support.faults.fleet import new_device, sign_in, stored
from tests.support.faults.mqtt_wire import PUBACK, Connection, publish_packet
from tests.support.faults.system import System

NUL = "\u0000"
DEEP = 10_000
HUGE = 10**30
ANSWER_AT_ONCE = 2.0  # seconds a new device may take to be created and read back


def deep(depth: int = DEEP) -> bytes:
    return b"[" * depth + b"]" * depth


def body(**fields: Any) -> bytes:
    return msgspec.json.encode(fields)


def reading_with(payload: bytes) -> bytes:
    return b'{"telemetry_type": "power", "id": "poison", "payload": ' + payload + b"}"


Request = tuple[str, str, str, bytes]  # label, method, path (after /api/v1), body


def nul_requests(device: str) -> list[Request]:
    telemetry, commands = f"/devices/{device}/telemetry", f"/devices/{device}/commands"
    return [
        ("REST device name NUL", "POST", "/devices", body(name=f"a{NUL}b", device_type="s")),
        (
            "REST device metadata NUL",
            "POST",
            "/devices",
            body(name="m", device_type="s", metadata={"note": NUL}),
        ),
        ("REST command name NUL", "POST", commands, body(command_name=f"re{NUL}boot")),
        (
            "REST command payload NUL",
            "POST",
            commands,
            body(command_name="reboot", payload={"k": NUL}),
        ),
        ("REST telemetry payload NUL", "POST", telemetry, reading_with(body(k=NUL))),
        ("REST telemetry payload key NUL", "POST", telemetry, reading_with(b'{"\\u0000": 1}')),
        ("REST telemetry type NUL", "POST", telemetry, body(telemetry_type=NUL, payload={})),
    ]


def edge_requests(device: str) -> list[Request]:
    telemetry = f"/devices/{device}/telemetry"
    cursors = [
        ("telemetry", f"{telemetry}?cursor=", [HUGE, HUGE]),
        ("telemetry", f"{telemetry}?cursor=", [-HUGE, 1]),
        ("devices", "/devices?cursor=", [HUGE]),
        ("commands", f"/devices/{device}/commands?cursor=", [HUGE]),
    ]
    return [
        ("REST telemetry 10,000-deep JSON", "POST", telemetry, reading_with(deep())),
        ("REST device metadata 10,000-deep JSON", "POST", "/devices", deep()),
        ("REST telemetry invalid UTF-8", "POST", telemetry, reading_with(b'{"k": "\xff\xfe"}')),
        ("REST device name invalid UTF-8", "POST", "/devices", b'{"name": "\xc3\x28"}'),
        *[
            (f"REST {name} cursor {key}", "GET", path + encode_cursor(name, key), b"")
            for name, path, key in cursors
        ],
        ("REST telemetry limit 10**30", "GET", f"{telemetry}?limit={HUGE}", b""),
    ]


def refused_over_rest(base: str, headers: dict[str, str], requests: list[Request]) -> list[str]:
    findings = []
    with httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=15) as client:
        for label, method, path, content in requests:
            try:
                status = client.request(method, path, content=content or None).status_code
            except httpx.HTTPError as exc:
                findings.append(f"{label}: no answer ({type(exc).__name__})")
                continue
            if not 400 <= status < 500:
                findings.append(f"{label}: answered {status}, not a 4xx")
    return findings


Message = tuple[str, str, bytes]  # label, topic, payload


def nul_messages(topic: str, device: str) -> list[Message]:
    own = f"{topic}/devices/{device}"
    discovery = {
        "mac_address": "02:00:00:00:00:01",
        "device": {"id": str(uuid.uuid4()), "name": f"a{NUL}b", "status_id": 1},
        "sensors": [],
        "actors": [],
    }
    return [
        ("MQTT telemetry payload NUL", f"{own}/telemetry", reading_with(body(k=NUL))),
        ("MQTT telemetry type NUL", f"{own}/telemetry", body(telemetry_type=NUL, payload={})),
        ("MQTT discovery device name NUL", f"{topic}/discovery", msgspec.json.encode(discovery)),
        ("MQTT status NUL", f"{own}/status", body(status=f"online{NUL}")),
    ]


def edge_messages(topic: str, device: str) -> list[Message]:
    own = f"{topic}/devices/{device}/telemetry"
    return [
        ("MQTT telemetry 10,000-deep JSON", own, reading_with(deep())),
        ("MQTT telemetry invalid UTF-8", own, reading_with(b'{"k": "\xff\xfe"}')),
        ("MQTT Lambda reading 10,000-deep JSON", topic, deep()),
    ]


def oversized_messages(topic: str, device: str) -> list[Message]:
    blob = "x" * (1024 * 1024 + 1024)
    own = f"{topic}/devices/{device}/telemetry"
    return [("MQTT telemetry payload > 1 MiB", own, reading_with(body(blob=blob)))]


def publish(port: int, messages: list[Message]) -> list[str]:
    """Each message at QoS 1, one at a time; the broker must take it (PUBACK)."""
    findings = []
    connection = Connection(port, f"poison-{uuid.uuid4().hex[:6]}", 10.0)
    try:
        for packet_id, (label, topic, payload) in enumerate(messages, start=1):
            connection.send(publish_packet(topic, packet_id, payload))
            if connection.read()[0] != PUBACK:
                findings.append(f"{label}: the broker did not take it")
    finally:
        connection.close()
    return findings


def still_works(deployed: System, headers: dict[str, str], poisoned: str) -> list[str]:
    """A new device is created and read back at once; nothing of the poison was stored."""
    findings = []
    started = time.monotonic()
    try:
        device = new_device(deployed.base, headers, timeout=ANSWER_AT_ONCE)
        read = httpx.get(
            f"{deployed.base}/api/v1/devices/{device}", headers=headers, timeout=ANSWER_AT_ONCE
        )
        if read.status_code != 200:
            findings.append(f"the new device reads back {read.status_code}")
        took = time.monotonic() - started
        if took > ANSWER_AT_ONCE:
            findings.append(f"a new device took {took:.1f} s")
    except (httpx.HTTPError, AssertionError) as exc:
        findings.append(f"a new device did not answer within {ANSWER_AT_ONCE} s: {exc!r}")
    if stored(deployed, [poisoned]):
        findings.append("readings of the poison were stored")
    return findings


def poison(
    rest: Callable[[str], list[Request]], mqtt: Callable[[str, str], list[Message]]
) -> Fault:
    """Send every poison input to a device of its own, then check the system still works."""

    def fault(deployed: System, hold: float) -> list[str]:
        headers = sign_in(deployed.base)
        device = new_device(deployed.base, headers)
        topic = deployed.env["IOTLEDGER_MQTT_TOPIC"]
        findings = refused_over_rest(deployed.base, headers, rest(device))
        findings += publish(deployed.cluster.broker.port, mqtt(topic, device))
        time.sleep(hold)  # the adapter and the projections have had them
        return findings + still_works(deployed, headers, device)

    return fault


def no_requests(device: str) -> list[Request]:
    return []
