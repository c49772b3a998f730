"""A process holds no more PostgreSQL connections than its settings say, idle and busy.

The budget of each role (`docs/operations.md`, the connection budget), counted in
`pg_stat_activity` by `application_name` while `iotledger serve` runs as a user runs it.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psycopg

from iotledger.adapters.postgres.views.catalog import PROJECTIONS
from iotledger.settings import DatabaseUrl
from tests.support.processes import Server, serving, signed_in_device, stop, wait_for_http

POOL_SIZE = 4


def budget(roles: tuple[str, ...], pool_size: int) -> Counter[str]:
    """The most connections of each name a process of these roles may hold."""
    allowed = Counter({"iotledger-pool": pool_size, "iotledger-eventstore": pool_size})
    if "api" in roles or "mqtt" in roles:
        allowed["iotledger-ingest"] = 1
    if "api" in roles:
        allowed["iotledger-watch"] = 1
        allowed["iotledger-stream-wake"] = 1  # once a live stream is open
    if "mqtt" in roles:
        allowed.update({"iotledger-dispatcher": 1, "iotledger-device-checks": 1})
        allowed["iotledger-mqtt-group-member"] = 1  # with an external broker (shared group)
    if "projections" in roles:
        for name in PROJECTIONS:
            allowed.update({f"iotledger-feed-{name}": 1, f"iotledger-feed-{name}-ahead": 1})
    return allowed


def held(server: DatabaseUrl, pid: int) -> Counter[str]:
    """The connections process `pid` holds, by name, as PostgreSQL lists them."""
    with psycopg.connect(str(server), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity"
            " WHERE client_port = ANY(%s) GROUP BY application_name",
            (sorted(local_ports(pid)),),
        ).fetchall()
    return Counter(dict(rows))


def local_ports(pid: int) -> set[int]:
    """The local ports of the TCP sockets process `pid` has open (Linux `/proc`)."""
    fds = Path(f"/proc/{pid}/fd")
    sockets = set()
    for fd in fds.iterdir():
        with suppress(OSError):  # closed meanwhile
            sockets.add(os.readlink(fd))
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if f"socket:[{fields[9]}]" in sockets:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@contextmanager
def most_held(server: DatabaseUrl, pid: int) -> Iterator[Counter[str]]:
    """The most connections of each name seen while the block runs (sampled every 20 ms)."""
    most: Counter[str] = Counter()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            most.update(+(held(server, pid) - most))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield most
    finally:
        done.set()
        sampler.join()


def within(seen: Counter[str], allowed: Counter[str]) -> bool:
    return not seen - allowed and seen.total() <= allowed.total()


def busy(base: str) -> None:
    """Sign-ups, devices, readings and reads, 24 at a time."""
    headers, device = signed_in_device(base)
    telemetry = f"{base}/api/v1/devices/{device}/telemetry"
    reading = {"telemetry_type": "temperature", "payload": {"celsius": 20}}
    calls: list[Callable[[], httpx.Response]] = [
        lambda: httpx.post(telemetry, json=reading, headers=headers, timeout=20),
        lambda: httpx.get(telemetry, headers=headers, timeout=20),
        lambda: httpx.get(f"{base}/api/v1/devices", headers=headers, timeout=20),
        lambda: httpx.post(
            f"{base}/api/v1/devices",
            json={"name": "n", "device_type": "t"},
            headers=headers,
            timeout=20,
        ),
    ]
    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda n: calls[n % len(calls)](), range(240)))
    assert [a.status_code for a in answers if a.status_code >= 300] == []


def measure(server: Server, base: str, postgres: DatabaseUrl) -> tuple[Counter[str], Counter[str]]:
    """The connections held idle, and the most held under load."""
    wait_for_http(base, server)
    idle = held(postgres, server.pid)
    with most_held(postgres, server.pid) as loaded:
        busy(base)
    return idle, loaded


def check(roles: tuple[str, ...], server: Server, port: int, postgres: DatabaseUrl) -> None:
    """`server` (of these roles) within its budget, idle and under load; it stops cleanly."""
    idle, loaded = measure(server, f"http://127.0.0.1:{port}", postgres)
    code, _, output = stop(server)
    assert code == 0, output
    print(f"{' '.join(roles)}: idle {dict(idle)}, most under load {dict(loaded)}")
    allowed = budget(roles, POOL_SIZE)
    assert within(idle, allowed), (idle, allowed)
    assert within(loaded, allowed), (loaded, allowed)


def test_an_api_process_holds_what_its_settings_allow(
    migrated: tuple[int, dict[str, str]], server_url: DatabaseUrl
) -> None:
    port, env = migrated
    env = {**env, "IOTLEDGER_DB_POOL_SIZE": str(POOL_SIZE)}
    with serving("--role", "projections", env=env), serving("--role", "api", env=env) as api:
        check(("api",), api, port, server_url)


def test_serve_holds_what_its_settings_allow(
    migrated: tuple[int, dict[str, str]], server_url: DatabaseUrl
) -> None:
    port, env = migrated
    env = {**env, "IOTLEDGER_DB_POOL_SIZE": str(POOL_SIZE)}
    with serving(env=env) as server:
        check(("api", "mqtt", "projections"), server, port, server_url)
