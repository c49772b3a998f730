"""The live stream, against `iotledger serve` as clients meet it: over HTTP, with MQTT
devices on the machine's broker, across disconnects and restarts."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import msgspec
import pytest

from iotledger.settings import DatabaseUrl, MqttUrl
from tests.support.databases import create_database, drop_database
from tests.support.identity import unique
from tests.support.mqtt import Device, LoopThread
from tests.support.network import free_port
from tests.support.processes import environment, serving, stop, wait_for_http, wait_until

Event = dict[str, Any]


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.base = f"http://127.0.0.1:{env['IOTLEDGER_PORT']}"
        self.topic = env["IOTLEDGER_MQTT_TOPIC"]
        self.pid = 0

    @contextmanager
    def running(self) -> Iterator[subprocess.Popen[str]]:
        with serving(env=self.env) as process:
            wait_for_http(self.base, process)
            self.pid = process.pid
            try:
                yield process
            except BaseException:
                if process.poll() is None:
                    print(stop(process)[2])  # what the server said, for the failure's report
                raise


@contextmanager
def own_server(server_url: DatabaseUrl, mqtt_url: MqttUrl) -> Iterator[Server]:
    """The environment of a `serve` on a database and a port of its own: beats every half
    second, a client that reads nothing for two seconds is cut."""
    database = create_database(server_url)
    topic = f"iotledger-stream-{uuid.uuid4().hex[:8]}"
    env = environment(
        database,
        mqtt_url,
        IOTLEDGER_PORT=str(free_port()),
        IOTLEDGER_MQTT_TOPIC=topic,
        IOTLEDGER_MQTT_CLIENT_ID=topic,
        IOTLEDGER_STREAM_HEARTBEAT="0.5",
        IOTLEDGER_STREAM_STALL_TIMEOUT="2",
        IOTLEDGER_DB_POOL_SIZE="4",  # the machine's PostgreSQL is shared
    )
    try:
        yield Server(env)
    finally:
        drop_database(server_url, database)


@pytest.fixture
def server(server_url: DatabaseUrl, mqtt_url: MqttUrl) -> Iterator[Server]:
    with own_server(server_url, mqtt_url) as server:
        yield server


@pytest.fixture(scope="module")
def running(server_url: DatabaseUrl, mqtt_url: MqttUrl) -> Iterator[Server]:
    with own_server(server_url, mqtt_url) as server, server.running():
        yield server


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    try:
        yield thread
    finally:
        thread.close()


def sign_in(base: str) -> dict[str, str]:
    name = unique()
    account = {"username": name, "email": f"{name}@example.com", "password": "secret123"}
    assert httpx.post(f"{base}/api/v1/auth/register", json=account).status_code == 201
    login = httpx.post(f"{base}/api/v1/auth/login", json=account)
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def new_device(base: str, headers: dict[str, str]) -> str:
    body = {"name": "boiler", "device_type": "sensor"}
    created = httpx.post(f"{base}/api/v1/devices", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def post_readings(base: str, headers: dict[str, str], device: str, *values: int) -> None:
    for value in values:
        body = {"telemetry_type": "temperature", "payload": {"celsius": value}}
        posted = httpx.post(f"{base}/api/v1/devices/{device}/telemetry", json=body, headers=headers)
        assert posted.status_code == 201, posted.text


class SseClient:
    """What an EventSource sees: events (id, event, data) and comments, line by line."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def next(self) -> Event:
        event: Event = {}
        for line in self._lines:
            if not line:
                return event
            field, _, value = line.partition(": ")
            event[field or "comment"] = value
        raise EOFError("the stream ended")

    def until_idle(self) -> list[Event]:
        """Every event up to the first keep-alive: a stream beats only once it has caught up."""
        found: list[Event] = []
        while "comment" not in (event := self.next()):
            found.append({**event, "data": msgspec.json.decode(event["data"])})
        return found

    def to_the_end(self) -> list[Event]:
        """Everything until the server ends the stream (comments too)."""
        found: list[Event] = []
        try:
            while True:
                found.append(self.next())
        except EOFError:
            return found

    def events(self, count: int) -> list[Event]:
        """The next `count` events, comments skipped."""
        found: list[Event] = []
        while len(found) < count:
            event = self.next()
            if "comment" not in event:
                found.append({**event, "data": msgspec.json.decode(event["data"])})
        return found


@contextmanager
def stream(base: str, path: str, headers: dict[str, str], **params: Any) -> Iterator[SseClient]:
    with (
        httpx.Client(base_url=base, timeout=httpx.Timeout(10, read=10)) as client,
        client.stream("GET", path, headers=headers, params=params) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseClient(response)


def listed(base: str, headers: dict[str, str], device: str, what: str) -> list[Any]:
    answer = httpx.get(f"{base}/api/v1/devices/{device}/{what}?limit=100", headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[Any] = answer.json()
    return items


def replay(base: str, headers: dict[str, str], device: str) -> list[Event]:
    """Every event of the device from the start of the log."""
    with stream(base, f"/api/v1/devices/{device}/stream", headers, after=0) as sse:
        return sse.until_idle()


def test_a_stream_resumes_across_a_restart_and_ends_cleanly_when_the_server_stops(
    server: Server,
) -> None:
    """First in the module: its servers never run beside the module's (connections)."""
    base = server.base
    with server.running() as process:
        headers = sign_in(base)
        device = new_device(base, headers)
        path = f"/api/v1/devices/{device}/stream"
        with stream(base, path, headers) as sse:
            post_readings(base, headers, device, 1, 2)
            seen = sse.events(2)
        post_readings(base, headers, device, 3)
        with stream(base, "/api/v1/stream", headers, types="telemetry") as watching:
            assert watching.next() == {"comment": "keep-alive"}  # open, and idle
            code, took, output = stop(process)
            rest = watching.to_the_end()  # the server ends it: no read timeout
    assert code == 0, output
    assert took < 10
    assert all(event == {"comment": "keep-alive"} for event in rest)
    with server.running():
        post_readings(base, headers, device, 4)
        with stream(base, path, {**headers, "Last-Event-ID": seen[-1]["id"]}) as sse:
            missed = sse.events(2)
        assert [e["data"]["payload"]["celsius"] for e in missed] == [3, 4]
        assert replay(base, headers, device)[1:] == [*seen, *missed]


def test_a_client_that_reconnects_with_last_event_id_gets_exactly_what_it_missed_in_order(
    running: Server, loop: LoopThread, mqtt_url: MqttUrl
) -> None:
    base = running.base
    headers = sign_in(base)
    device = new_device(base, headers)
    path = f"/api/v1/devices/{device}/stream"
    with stream(base, path, headers) as sse:
        post_readings(base, headers, device, 1, 2, 3)
        seen = sse.events(3)
    assert [e["event"] for e in seen] == ["telemetry"] * 3
    assert [e["data"]["payload"] for e in seen] == [{"celsius": n} for n in (1, 2, 3)]

    post_readings(base, headers, device, 4, 5)
    thing = Device(loop, mqtt_url)
    try:
        for n in (6, 7):
            reading = {"telemetry_type": "temperature", "payload": {"celsius": n}, "id": n}
            thing.publish(f"{running.topic}/devices/{device}/telemetry", reading)
        wait_until(lambda: len(listed(base, headers, device, "telemetry")) == 7)
        command = httpx.post(
            f"{base}/api/v1/devices/{device}/commands",
            json={"command_name": "reboot"},
            headers=headers,
        ).json()
        done = {"status": "executed", "result": {"ok": True}}
        commands = f"{base}/api/v1/devices/{device}/commands/{command['id']}"
        assert httpx.patch(commands, json=done, headers=headers).status_code == 200
        thing.publish(f"{running.topic}/devices/{device}/status", {"status": "offline"})
        wait_until(lambda: status_of(base, headers, device) == "offline")
    finally:
        thing.disconnect()

    with stream(base, path, {**headers, "Last-Event-ID": seen[-1]["id"]}) as sse:
        missed = sse.until_idle()
    assert replay(base, headers, device)[1:] == [*seen, *missed]
    readings = {r["id"]: r for r in listed(base, headers, device, "telemetry")}
    telemetry = [e["data"] for e in missed if e["event"] == "telemetry"]
    assert telemetry == [readings[r["id"]] for r in telemetry]
    assert [r["payload"]["celsius"] for r in telemetry] == [4, 5, 6, 7]
    states = [e["data"] for e in missed if e["event"] == "command"]
    assert [states[0]["state"], states[-1]["state"]] == ["issued", "executed"]
    assert states[-1] == listed(base, headers, device, "commands")[0]
    assert [e["data"]["status"] for e in missed if e["event"] == "status"][-1] == "offline"


def status_of(base: str, headers: dict[str, str], device: str) -> str:
    answer = httpx.get(f"{base}/api/v1/devices/{device}", headers=headers)
    return str(answer.json()["status"])


def test_another_users_device_streams_404_and_the_fleet_stream_hides_it(running: Server) -> None:
    base = running.base
    owner, other = sign_in(base), sign_in(base)
    device = new_device(base, owner)
    answer = httpx.get(f"{base}/api/v1/devices/{device}/stream", headers=other)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"
    assert httpx.get(f"{base}/api/v1/stream").status_code == 401
    mine = new_device(base, other)
    with stream(base, "/api/v1/stream", other, types="telemetry") as sse:
        post_readings(base, owner, device, 1)
        post_readings(base, other, mine, 2)
        (event,) = sse.events(1)
    assert event["data"]["device_id"] == mine
    assert event["data"]["payload"] == {"celsius": 2}


def test_types_choose_the_kinds_of_events_and_heartbeats_keep_an_idle_stream_alive(
    running: Server,
) -> None:
    base = running.base
    headers = sign_in(base)
    device = new_device(base, headers)
    path = f"/api/v1/devices/{device}/stream"
    with stream(base, path, headers, types="device,status") as sse:
        post_readings(base, headers, device, 1)
        edit = {"name": "kettle", "status": "online"}
        assert httpx.patch(f"{base}/api/v1/devices/{device}", json=edit, headers=headers).is_success
        events = sse.events(2)
        started = time.monotonic()
        assert sse.next() == {"comment": "keep-alive"}
        assert time.monotonic() - started < 2
    assert [e["event"] for e in events] == ["device", "status"]
    assert events[0]["data"]["change"] == "Renamed"
    now = httpx.get(f"{base}/api/v1/devices/{device}", headers=headers).json()
    assert events[0]["data"]["device"] == {**now, "status": "offline"}  # right after the rename
    assert events[1]["data"]["status"] == "online"
    bad = httpx.get(f"{base}{path}", params={"types": "telemetry,gossip"}, headers=headers)
    assert bad.status_code == 400


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1])


def stalled_client(base: str, path: str, headers: dict[str, str]) -> socket.socket:
    """A client that asks for the stream from the start of the log and then reads nothing."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    request = f"GET {path}?after=0 HTTP/1.1\r\nHost: {host}\r\n"
    request += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(request.encode())
    return sock


def drained(sock: socket.socket) -> int:
    """Read what is left until the server closes the connection: how many bytes."""
    sock.settimeout(10)
    total = 0
    while chunk := sock.recv(65536):
        total += len(chunk)
    return total


PAD = "x" * 60_000


def post_blobs(base: str, headers: dict[str, str], device: str, count: int) -> None:
    """`count` readings of about 60 kB each, over one connection."""
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for n in range(count):
            body = {"telemetry_type": "blob", "payload": {"n": n, "pad": PAD}}
            assert client.post(f"/api/v1/devices/{device}/telemetry", json=body).status_code == 201


def test_a_client_that_stops_reading_is_cut_and_the_server_memory_stays_bounded(
    running: Server,
) -> None:
    base = running.base
    headers = sign_in(base)
    device = new_device(base, headers)
    post_blobs(base, headers, device, 500)  # about 30 MB of events for each client
    pid = running.pid
    before = rss_kib(pid)
    clients = [stalled_client(base, f"/api/v1/devices/{device}/stream", headers) for _ in range(4)]
    peak = before
    for _ in range(40):  # the stall timeout is 2 s: they are cut well within this
        peak = max(peak, rss_kib(pid))
        time.sleep(0.1)
    received = [drained(sock) for sock in clients]
    for sock in clients:
        sock.close()
    # Each was cut with what the kernel's and the server's buffers held (about 3 MB
    # here), not its 30 MB; the server grew by about 10 MB for the four of them
    # (434 MB when a page was not bounded in bytes).
    assert all(total < 10_000_000 for total in received), received
    assert peak - before < 80_000, (before, peak)
