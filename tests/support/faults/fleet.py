"""The devices a scenario loads, and what the read model holds of their readings."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass

import httpx
import psycopg

from tests.support.faults.load import Budget, Load, Poster, Publisher
from tests.support.faults.system import System


@dataclass(frozen=True)
class Fleet:
    """One signed-in user and its devices: some publish over MQTT, some post over REST."""

    headers: dict[str, str]
    mqtt: list[str]
    rest: list[str]

    def mqtt_load(self, deployed: System, window: int, budget: Budget) -> Load:
        topic = deployed.env["IOTLEDGER_MQTT_TOPIC"]
        port = deployed.cluster.broker.port
        workers: list[Publisher | Poster] = [
            Publisher(port, f"{topic}/devices/{device}/telemetry", f"m{n}", window)
            for n, device in enumerate(self.mqtt)
        ]
        return Load(workers, budget)

    def rest_load(self, deployed: System, budget: Budget) -> Load:
        workers: list[Publisher | Poster] = [
            Poster(f"{deployed.base}/api/v1/devices/{device}/telemetry", self.headers, f"r{n}")
            for n, device in enumerate(self.rest)
        ]
        return Load(workers, budget)


def sign_in(base: str) -> dict[str, str]:
    name = f"faults-{uuid.uuid4().hex[:8]}"
    account = {"username": name, "email": f"{name}@example.com", "password": "secret123"}
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.post("/api/v1/auth/register", json=account).status_code == 201
        login = client.post("/api/v1/auth/login", json=account)
        return {"Authorization": f"Bearer {login.json()['access_token']}"}


def new_device(base: str, headers: dict[str, str], timeout: float = 30) -> str:
    answer = httpx.post(
        f"{base}/api/v1/devices",
        json={"name": "meter", "device_type": "sensor", "status": "online"},
        headers=headers,
        timeout=timeout,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def fleet(deployed: System, devices: int) -> Fleet:
    deployed.account = deployed.account or sign_in(deployed.base)
    headers = deployed.account
    made = [new_device(deployed.base, headers) for _ in range(2 * devices)]
    return Fleet(headers, made[:devices], made[devices:])


def stored(deployed: System, devices: list[str]) -> Counter[str]:
    """How many rows of the readings read model each reading key has, for `devices`."""
    url = deployed.env["IOTLEDGER_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT payload->>'key' FROM readings WHERE device_id = ANY(%s)",
            ([uuid.UUID(d) for d in devices],),
        ).fetchall()
    return Counter(str(key) for (key,) in rows)
