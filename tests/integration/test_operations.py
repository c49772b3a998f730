"""What an operator and an orchestrator see: /health, /ready and /metrics."""

from __future__ import annotations

import dataclasses
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from iotledger.adapters.embedded.services import EmbeddedPostgres
from iotledger.adapters.postgres.projection_status import state_of
from iotledger.adapters.postgres.views.catalog import PROJECTIONS
from iotledger.api.app import create_app
from iotledger.bootstrap import App, build
from iotledger.projections.failures import ProjectionHealth, ProjectionState
from iotledger.settings import DatabaseUrl, MqttUrl, Settings, parse_database_url
from tests.support.databases import migrated_services
from tests.support.mqtt import Adapter, Device, LoopThread, devices
from tests.support.telemetry import new_actor, new_command, new_telemetry_device
from tests.support.waiting import eventually

CONTRACT_METRICS = (
    "iotledger_readings_ingested",
    "iotledger_ingest_batch_readings",
    "iotledger_append_seconds",
    "iotledger_projection_position",
    "iotledger_projection_lag_events",
    "iotledger_projection_failures",
    "iotledger_mqtt_messages",
    "iotledger_mqtt_dropped",
    "iotledger_commands",
    "iotledger_http_requests",
    "iotledger_http_request_duration_seconds",
    "iotledger_db_pool_connections",
)


def samples(client: TestClient[object]) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """/metrics as {sample name: {labels: value}}, parsed as Prometheus parses it."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found


def families(client: TestClient[object]) -> set[str]:
    return {family.name for family in text_string_to_metric_families(client.get("/metrics").text)}


def test_health_answers_ok_while_the_database_answers(client: TestClient[object]) -> None:
    answer = client.get("/health")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_ready_shows_every_projection_running_and_their_positions(
    client: TestClient[object], auth_headers: dict[str, str]
) -> None:
    def ready() -> object:
        answer = client.get("/ready")
        body = answer.json()
        lags = [p["lag"] for p in body["projections"].values()]
        return answer.status_code == 200 and max(lags) <= 1000 and body

    body = eventually(ready, what="ready")
    assert (body["status"], body["database"]) == ("ready", "up")
    assert body["broker"] in {"up", "none"}  # "up" once a test started the mqtt role
    assert set(body["projections"]) == set(PROJECTIONS)
    for projection in body["projections"].values():
        assert projection["state"] == "running"
        assert projection["position"] > 0


def test_metrics_name_every_contract_metric(client: TestClient[object]) -> None:
    client.get("/hello")
    assert set(CONTRACT_METRICS) <= families(client)


def test_a_rest_reading_moves_the_ingest_and_http_counters(
    client: TestClient[object], auth_headers: dict[str, str]
) -> None:
    device = new_telemetry_device(client, auth_headers)
    route = "/api/v1/devices/{device_id}/telemetry"
    before = samples(client)
    posted = client.post(
        f"/api/v1/devices/{device['id']}/telemetry",
        json={"telemetry_type": "power", "payload": {"watts": 3}},
        headers=auth_headers,
    )
    assert posted.status_code == 201
    after = samples(client)

    def moved(name: str, **labels: str) -> float:
        key = tuple(sorted(labels.items()))
        return after[name].get(key, 0) - before.get(name, {}).get(key, 0)

    assert moved("iotledger_readings_ingested_total", source="rest") >= 1
    assert moved("iotledger_http_requests_total", method="POST", route=route, status="201") == 1
    assert moved("iotledger_http_request_duration_seconds_count", method="POST", route=route) == 1
    assert moved("iotledger_ingest_batch_readings_count") >= 1
    assert moved("iotledger_append_seconds_count") >= 1
    assert device["id"] not in str(after["iotledger_http_requests_total"])  # templates only


def test_an_mqtt_reading_moves_the_mqtt_counters(
    client: TestClient[object],
    auth_headers: dict[str, str],
    services: App,
    mqtt_adapter: Adapter,
    mqtt_loop: LoopThread,
    mqtt_url: MqttUrl,
) -> None:
    device = new_telemetry_device(client, auth_headers)
    stored = ("iotledger_mqtt_messages_total", (("outcome", "stored"),))
    ingested = ("iotledger_readings_ingested_total", (("source", "mqtt"),))
    dropped = ("iotledger_mqtt_dropped_total", (("reason", "not_json"),))

    def value(name_labels: tuple[str, tuple[tuple[str, str], ...]]) -> float:
        name, labels = name_labels
        return samples(client).get(name, {}).get(labels, 0)

    before = [value(stored), value(ingested), value(dropped)]
    topic = services.topics.telemetry(uuid.UUID(device["id"]))
    with devices(mqtt_loop) as played:
        played.append(Device(mqtt_loop, mqtt_url))

        def moved() -> bool:
            # Sent again while waiting: Mosquitto may route a shared subscription's message
            # to the lingering session of an adapter an earlier test closed.
            played[0].publish(topic, {"telemetry_type": "power", "payload": {"watts": 1}})
            played[0].publish(topic, b"not json")
            time.sleep(0.2)
            now = [value(stored), value(ingested), value(dropped)]
            return all(after > earlier for after, earlier in zip(now, before, strict=True))

        eventually(moved, what="the counters of stored and dropped messages")


@pytest.fixture
def idle_services(own_database: DatabaseUrl, tmp_path: Path) -> Iterator[App]:
    """Every part on a migrated database of its own, with no projection running."""
    settings = Settings(database_url=own_database, data_dir=tmp_path, jwt_secret="s")
    with migrated_services(settings, own_database) as services:
        yield services


def test_ready_answers_503_when_no_runner_runs_the_projections(idle_services: App) -> None:
    with TestClient(create_app(idle_services)) as client:
        client.post("/register", json={"username": "ops", "password": "secret123"})
        answer = client.get("/ready")
    assert answer.status_code == 503
    body = answer.json()
    assert (body["status"], body["database"]) == ("unready", "up")
    assert {p["state"] for p in body["projections"].values()} == {"stopped"}
    assert body["projections"]["users"]["lag"] >= 1


def test_ready_answers_503_when_a_projection_lags_past_the_limit(idle_services: App) -> None:
    lagging = msgspec.structs.replace(idle_services.settings, ready_max_lag=0)
    lagging_services = dataclasses.replace(idle_services, settings=lagging)
    others = [name for name in PROJECTIONS if name != "users"]
    with TestClient(create_app(lagging_services)) as client:
        client.post("/register", json={"username": "ops", "password": "secret123"})
        with idle_services.projections.running(others):
            body = eventually(
                lambda: (
                    (answer := client.get("/ready").json())["projections"]["devices"]["state"]
                    == "running"
                    and answer
                ),
                what="the other projections running",
            )
    assert body["status"] == "unready"
    assert body["projections"]["users"]["state"] == "stopped"
    assert body["projections"]["users"]["lag"] >= 1


@pytest.fixture
def own_postgres() -> Iterator[tuple[EmbeddedPostgres, DatabaseUrl]]:
    """A PostgreSQL of the test's own, that the test may stop or freeze. Its directory is
    not under pytest's: concurrent pytest sessions prune each other's old directories."""
    with tempfile.TemporaryDirectory(prefix="iotledger-ops-") as directory:
        postgres = EmbeddedPostgres(Path(directory) / "postgres")
        url = parse_database_url(postgres.start())
        try:
            yield postgres, url
        finally:
            postgres.stop()


def _postgres_processes(postgres: EmbeddedPostgres) -> list[int]:
    postmaster = int((postgres.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    return [postmaster, *map(int, children)]


def _timed_health(client: TestClient[object]) -> tuple[int, object, float]:
    started = time.monotonic()
    answer = client.get("/health")
    return answer.status_code, answer.json(), time.monotonic() - started


def test_health_answers_503_in_bounded_time_when_the_database_stops_or_hangs(
    own_postgres: tuple[EmbeddedPostgres, DatabaseUrl], tmp_path: Path
) -> None:
    postgres, url = own_postgres
    services = build(Settings(database_url=url, data_dir=tmp_path, jwt_secret="s"), url)
    try:
        with TestClient(create_app(services)) as client:
            assert _timed_health(client)[:2] == (200, {"status": "ok"})
            frozen = _postgres_processes(postgres)
            for pid in frozen:
                os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(1.1)  # past the cached answer
                status, body, took = _timed_health(client)
                assert (status, body) == (503, {"status": "unavailable"})
                assert took < 3
                assert _timed_health(client)[2] < 1  # the hanging probe is not repeated
            finally:
                for pid in frozen:
                    os.kill(pid, signal.SIGCONT)
            eventually(lambda: _timed_health(client)[0] == 200, what="healthy again")
            postgres.stop()
            time.sleep(1.1)
            status, body, took = _timed_health(client)
            assert (status, body) == (503, {"status": "unavailable"})
            assert took < 3
    finally:
        services.close()


def test_an_issued_command_moves_the_commands_counter(
    client: TestClient[object], auth_headers: dict[str, str]
) -> None:
    pending = ("iotledger_commands_total", (("status", "pending"),))

    def issued() -> float:
        name, labels = pending
        return samples(client).get(name, {}).get(labels, 0)

    before = issued()
    new_command(client, auth_headers, new_actor(client, auth_headers))
    eventually(lambda: issued() >= before + 1, what="the pending command counted")


class Runner(msgspec.Struct):
    failing: bool

    def health(self) -> ProjectionHealth:
        state = ProjectionState.FAILING if self.failing else ProjectionState.STANDBY
        return ProjectionHealth("devices", state, None, int(self.failing))


@pytest.mark.parametrize(
    ("recorded", "held", "local", "state"),
    [
        (None, True, None, "running"),  # its lock is held, here or in another process
        (None, True, Runner(failing=False), "running"),  # ours stands by, another runs it
        (None, False, Runner(failing=False), "standby"),  # ours is about to take it
        (None, False, Runner(failing=True), "failing"),  # ours waits before its next attempt
        (None, False, None, "stopped"),  # nobody runs it
        ("stopped", True, None, "stopped"),  # stopped at an event, waiting for an operator
        ("failing", True, Runner(failing=False), "failing"),  # failed on an event, retrying
    ],
)
def test_a_projection_state_comes_from_its_failures_its_lock_and_this_process_runner(
    recorded: str | None, held: bool, local: Runner | None, state: str
) -> None:
    assert state_of(recorded, held, local) == state
