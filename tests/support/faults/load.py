"""Bounded load: QoS 1 publishers and REST posters, each reading with a unique id.

Every worker sends readings `"{prefix}-{n}"` for its device until its count or the
deadline runs out, and retries one that failed (a device would) with the same id,
so a retry of something that was in fact stored must not store it twice. What was
acknowledged (a PUBACK, a 2xx) and when anything failed is kept in a `Tally`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import msgspec

from tests.support.faults.mqtt_wire import PUBACK, Connection, publish_packet

RETRY_PAUSE = 0.2


@dataclass
class Tally:
    """What one channel's workers saw: acknowledged keys, failure times, slowest answer."""

    acked: set[str] = field(default_factory=set)
    failures: list[float] = field(default_factory=list)
    slowest: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, key: str, took: float = 0.0) -> None:
        with self._lock:
            self.acked.add(key)
            self.slowest = max(self.slowest, took)

    def fail(self, took: float = 0.0) -> None:
        with self._lock:
            self.failures.append(time.monotonic())
            self.slowest = max(self.slowest, took)


@dataclass(frozen=True)
class Budget:
    """When workers stop: `stop` set or `until` passed (then in-flight work gets `drain`
    seconds), or their count sent; and how fast each device sends (readings a second)."""

    stop: threading.Event
    per_device: int
    rate: float
    until: float  # time.monotonic() past which no worker goes on, whatever happens
    drain: float = 10.0

    def over(self) -> bool:
        return self.stop.is_set() or time.monotonic() > self.until


def reading(key: str) -> bytes:
    return msgspec.json.encode({"telemetry_type": "power", "payload": {"key": key}, "id": key})


def keys(prefix: str, budget: Budget) -> Iterator[str]:
    started = time.monotonic()
    for n in range(budget.per_device):
        if budget.over():
            return
        time.sleep(max(0.0, started + n / budget.rate - time.monotonic()))
        yield f"{prefix}-{n}"


class Publisher:
    """A device publishing its readings at QoS 1, `window` of them unacknowledged at most."""

    def __init__(self, port: int, topic: str, prefix: str, window: int) -> None:
        self._port, self._topic, self._prefix, self._window = port, topic, prefix, window
        self._ids = itertools.cycle(range(1, 65536))

    def run(self, budget: Budget, tally: Tally) -> None:
        fresh = keys(self._prefix, budget)
        retry: deque[str] = deque()
        inflight: dict[int, str] = {}
        connection: Connection | None = None
        give_up: float | None = None
        while give_up is None or time.monotonic() < give_up:
            if budget.over() and give_up is None:
                give_up = time.monotonic() + budget.drain
            try:
                connection = connection or Connection(self._port, f"pub-{self._prefix}", 3.0)
                self._fill(connection, fresh, retry, inflight)
                if not inflight:
                    break
                kind, body = connection.read()
                if kind == PUBACK:
                    tally.ack(inflight.pop(int.from_bytes(body[:2], "big")))
            except OSError:
                tally.fail()
                retry.extend(inflight.values())
                inflight.clear()
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(RETRY_PAUSE)
        if connection is not None:
            connection.close()

    def _fill(
        self,
        connection: Connection,
        fresh: Iterator[str],
        retry: deque[str],
        inflight: dict[int, str],
    ) -> None:
        while len(inflight) < self._window:
            key = retry.popleft() if retry else next(fresh, None)
            if key is None:
                return
            packet_id = next(self._ids)
            inflight[packet_id] = key
            connection.send(publish_packet(self._topic, packet_id, reading(key)))


class Poster:
    """A client posting its device's readings over REST, one at a time."""

    def __init__(self, url: str, headers: dict[str, str], prefix: str) -> None:
        self._url, self._headers, self._prefix = url, headers, prefix

    def run(self, budget: Budget, tally: Tally) -> None:
        with httpx.Client(headers=self._headers, timeout=15) as client:
            for key in keys(self._prefix, budget):
                self._post(client, key, budget, tally)

    def _post(self, client: httpx.Client, key: str, budget: Budget, tally: Tally) -> None:
        give_up = None
        while give_up is None or time.monotonic() < give_up:
            started = time.monotonic()
            try:
                answer = client.post(self._url, content=reading(key))
                ok = answer.is_success
            except httpx.HTTPError:
                ok = False
            took = time.monotonic() - started
            if ok:
                tally.ack(key, took)
                return
            tally.fail(took)
            if budget.over() and give_up is None:
                give_up = time.monotonic() + budget.drain
            time.sleep(RETRY_PAUSE)


class Load:
    """Workers in threads; `stop()` asks them to finish and waits (bounded)."""

    def __init__(self, workers: list[Publisher | Poster], budget: Budget) -> None:
        self.tally = Tally()
        self.budget = budget
        self._threads = [
            threading.Thread(target=w.run, args=(self.budget, self.tally), daemon=True)
            for w in workers
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self.budget.stop.set()
        deadline = time.monotonic() + self.budget.drain + 20
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
