"""Every Prometheus metric of iotledger, defined here once; the places that count import them.

Counts that happen in the hot paths are made per batch, not per reading: the ingest
observes one append (its size and its time) and adds the readings of each source at
once; the MQTT adapter adds a batch's messages per outcome. What is a state rather
than an event (projection positions, the connection pool) is read when Prometheus
scrapes, by a collector per process (`ProcessCollector`): the positions come from the
tracking table, so any process shows every projection, wherever it runs.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter as Counts
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool

from iotledger.settings import SettingsError

CONTENT_TYPE = CONTENT_TYPE_LATEST

READINGS_INGESTED = Counter(
    "iotledger_readings_ingested", "Readings stored for the first time, by source", ["source"]
)
INGEST_BATCH = Histogram(
    "iotledger_ingest_batch_readings",
    "Readings in one append of the ingest",
    buckets=(1, 5, 25, 100, 250, 500, 1000, 2500, 5000),
)
APPEND_SECONDS = Histogram(
    "iotledger_append_seconds",
    "Time of one append of readings to the log, commit included",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
PROJECTION_FAILURES = Counter(
    "iotledger_projection_failures",
    "Attempts of a projection runner of this process that ended in an error",
    ["projection"],
)
MQTT_MESSAGES = Counter(
    "iotledger_mqtt_messages",
    "MQTT messages settled: stored, duplicate (a redelivered reading), dropped, ignored",
    ["outcome"],
)
MQTT_DROPPED = Counter("iotledger_mqtt_dropped", "MQTT messages dropped, by reason", ["reason"])
MQTT_ACCOUNTS_MISSING = Gauge(
    "iotledger_mqtt_accounts_missing",
    "Issued accounts the dynsec broker lacked at the last reconciliation (re-issue them)",
)
MQTT_EVENTS = Counter(
    "iotledger_mqtt_events",
    "Other counts of the MQTT adapter (received, published, retried, commands, checks)",
    ["event"],
)
COMMANDS = Counter(
    "iotledger_commands",
    "Commands reaching a status, as the commands projection of this process applies them",
    ["status"],
)
HTTP_REQUESTS = Counter(
    "iotledger_http_requests", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "iotledger_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

for outcome in ("stored", "duplicate", "dropped", "ignored"):
    MQTT_MESSAGES.labels(outcome)


class MqttCounters(Counts[str]):
    """The MQTT adapter's counts by key, as its parts keep them (`counters["handled"] += 1`),
    each increase also added to its Prometheus counter: the counting happens once.

    `handled` is a message whose effect has committed (`stored`), `duplicate` a
    redelivered reading, `dropped` and `dropped.<reason>` a message refused, `ignored`
    one not meant for us; any other key (`received`, `published`, `retried`,
    `commands.dispatched`, `checks.lost`, ...) is an `event` of `iotledger_mqtt_events`.
    """

    def __setitem__(self, key: str, value: int) -> None:
        increase = value - self.get(key, 0)
        super().__setitem__(key, value)
        if increase > 0:
            _mqtt_metric(key).inc(increase)


_OUTCOMES = {"handled": "stored", "duplicate": "duplicate", "dropped": "dropped"}
_OUTCOMES["ignored"] = "ignored"


@functools.cache  # the keys are the adapter's own words, a few dozen: one child each
def _mqtt_metric(key: str) -> Any:
    if key in _OUTCOMES:
        return MQTT_MESSAGES.labels(_OUTCOMES[key])
    if key.startswith("dropped."):
        return MQTT_DROPPED.labels(key.removeprefix("dropped."))
    return MQTT_EVENTS.labels(key)


class ProjectionReport(Protocol):
    """What the collector needs of a projection's status (`adapters.postgres.projection_status`)."""

    @property
    def name(self) -> str: ...
    @property
    def position(self) -> int: ...
    @property
    def lag(self) -> int: ...


class ProcessCollector(Collector):
    """The states of this process, read at each scrape: projections and the pool."""

    def __init__(
        self, pool: ConnectionPool[Any], projections: Callable[[], Iterable[ProjectionReport]]
    ) -> None:
        self._pool = pool
        self._projections = projections

    def collect(self) -> Iterator[GaugeMetricFamily]:
        position = GaugeMetricFamily(
            "iotledger_projection_position",
            "The last log position a projection has applied",
            labels=["projection"],
        )
        lag = GaugeMetricFamily(
            "iotledger_projection_lag_events",
            "Events between the head of the log and a projection's position",
            labels=["projection"],
        )
        for report in self._reports():
            position.add_metric([report.name], report.position)
            lag.add_metric([report.name], report.lag)
        yield position
        yield lag
        yield self._pool_connections()

    def _reports(self) -> list[ProjectionReport]:
        try:
            return list(self._projections())
        except Exception:  # the database is down: /health says so; the rest still scrapes
            return []

    def _pool_connections(self) -> GaugeMetricFamily:
        stats = self._pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        family = GaugeMetricFamily(
            "iotledger_db_pool_connections",
            "Connections of this process's pool: idle, busy, and requests waiting for one",
            labels=["state"],
        )
        family.add_metric(["idle"], idle)
        family.add_metric(["busy"], size - idle)
        family.add_metric(["waiting"], stats.get("requests_waiting", 0))
        return family


class _Shared(Collector):
    """The metrics of this module (and of the Python process), registered once globally."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def process_registry(collector: Collector) -> CollectorRegistry:
    """Everything `/metrics` shows: the shared counters, then this process's states."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Shared())
    registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


@contextlib.contextmanager
def metrics_server(registry: CollectorRegistry, host: str, port: int) -> Iterator[None]:
    """`/metrics` on a port of its own (a thread), for a role without the HTTP API."""
    try:
        server, thread = start_http_server(port, host, registry)
    except OSError:
        raise SettingsError(
            f"IOTLEDGER_METRICS_PORT: cannot listen on {host}:{port} "
            "(address in use or not permitted)"
        ) from None
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
