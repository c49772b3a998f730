"""A large export from a served process: complete, in order, and in flat memory."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import pytest

from iotledger.application.readings import RecordReading
from iotledger.bootstrap import App
from iotledger.settings import DatabaseUrl, Settings
from tests.support.databases import start_services
from tests.support.processes import serving, wait_for_http

READINGS = 100_000
RSS_GROWTH_BOUND_KB = 60 * 1024
"""Wide: the export holds one chunk of 5,000 rows at a time (a few MB); holding all
100,000 rows as objects would take a few hundred MB."""
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1])


async def load(services: App, device_id: UUID, count: int) -> None:
    """`count` readings of one device through the shared ingest, 5,000 an append."""
    for first in range(0, count, 5000):
        batch = [
            RecordReading(
                device_id=device_id,
                telemetry_type="environment",
                payload={"n": n, "note": 'a "quoted", text'},
                recorded_at=T0 + timedelta(seconds=(n * 7919) % count),  # not in time order
                by="test:load",
                key=str(n),
            )
            for n in range(first, min(first + 5000, count))
        ]
        await services.recording.record(batch)


@pytest.fixture
def served(
    migrated: tuple[int, dict[str, str]], own_database: DatabaseUrl, settings: Settings
) -> Iterator[tuple[str, int, dict[str, str], str]]:
    """A served iotledger with a device of a user's holding READINGS readings:
    (base URL, server pid, the user's headers, the device id)."""
    port, env = migrated
    base = f"http://127.0.0.1:{port}"
    with serving(env=env) as process:
        wait_for_http(base, process)
        credentials = {"username": "exporter", "password": "secret-password"}
        assert httpx.post(f"{base}/register", json=credentials).status_code == 201
        token = httpx.post(f"{base}/login", json=credentials).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = {"name": "big", "device_type": "sensor"}
        device = httpx.post(f"{base}/api/v1/devices", json=body, headers=headers).json()["id"]
        services = start_services(settings, own_database)
        try:
            asyncio.run(load(services, UUID(device), READINGS))
        finally:
            services.close()
        yield base, process.pid, headers, device


def test_an_export_of_100000_readings_arrives_whole_and_in_order_in_flat_memory(
    served: tuple[str, int, dict[str, str], str],
) -> None:
    for fmt in ("ndjson", "csv"):
        check_export(*served, fmt)


def check_export(base: str, pid: int, headers: dict[str, str], device: str, fmt: str) -> None:
    url = f"{base}/api/v1/devices/{device}/telemetry/export?format={fmt}"
    body = bytearray()
    samples: list[int] = []
    with httpx.stream("GET", url, headers=headers, timeout=120) as response:
        assert response.status_code == 200
        for piece in response.iter_bytes(64 * 1024):
            body += piece
            samples.append(rss_kb(pid))
    rows = parse(bytes(body), fmt)
    assert len(rows) == READINGS
    assert sorted(n for _, n in rows) == list(range(READINGS))
    times = [at for at, _ in rows]
    assert times == sorted(times)
    assert max(samples) - samples[0] < RSS_GROWTH_BOUND_KB, (samples[0], max(samples))


def parse(body: bytes, fmt: str) -> list[tuple[datetime, int]]:
    """(device time, payload n) of every exported reading."""
    if fmt == "ndjson":
        items = [json.loads(line) for line in body.splitlines()]
    else:
        items = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
        items = [{**item, "payload": json.loads(item["payload"])} for item in items]
    return [(datetime.fromisoformat(i["recorded_at"]), i["payload"]["n"]) for i in items]
