"""Every scenario of the fault suite, and how one runs: load, fault, count.

A run starts a fresh deployment on the suite's cluster, loads it over MQTT (QoS 1)
and REST at once, injects the fault after `lead` seconds, keeps loading `tail`
seconds after it was undone ("recovery": the killed process is ready again, the
server restarted, the lock released), stops the load, waits until everything
acknowledged is in the readings read model, and counts.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.faults import faults, poison
from tests.support.faults.cluster import Cluster
from tests.support.faults.faults import Fault
from tests.support.faults.fleet import Fleet, fleet, stored
from tests.support.faults.load import Budget, Load
from tests.support.faults.system import ROLES, STATEMENT_TIMEOUT, System, system

SERVE: tuple[str | None, ...] = (None,)


@dataclass(frozen=True)
class Size:
    devices: int  # per channel
    window: int  # unacknowledged QoS 1 messages per publisher
    per_device: int  # the most readings one device sends
    rate: float  # the most readings one device sends a second
    lead: float
    hold: float
    tail: float
    settle: float  # the longest wait for acknowledged readings to be queryable
    errors_end: float  # the promise: no error later than this after recovery


SHORT = Size(devices=2, window=10, per_device=5_000, rate=150, lead=1.0, hold=1.0, tail=2.5,
             settle=15.0, errors_end=15.0)  # fmt: skip
LONG = Size(devices=4, window=50, per_device=200_000, rate=400, lead=5.0, hold=5.0, tail=20.0,
            settle=45.0, errors_end=20.0)  # fmt: skip

WAIT_LIMIT = STATEMENT_TIMEOUT + 1.0  # past it, a request hangs


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: Fault
    topology: tuple[str | None, ...] = ROLES
    hold_factor: float = 1.0
    bounded_wait: bool = False  # the promise includes: no REST request waits > WAIT_LIMIT
    known_bug: str | None = None  # why it misses its promise today (a broker limit)
    isolated: bool = False  # on a deployment of its own: it may leave the shared one broken

    def promise(self, size: Size) -> str:
        text = f"0 lost, 0 duplicates, errors end within {size.errors_end:.0f} s of recovery"
        if self.bounded_wait:
            text += f", no request waits > {WAIT_LIMIT:.0f} s"
        return text


SCENARIOS = (
    Scenario("kill -9 serve --role mqtt", faults.kill_role("mqtt")),
    Scenario("kill -9 serve --role api", faults.kill_role("api")),
    Scenario("kill -9 serve --role projections", faults.kill_role("projections")),
    Scenario("kill -9 serve", faults.kill_role(None), topology=SERVE),
    Scenario("pg_ctl restart -m immediate", faults.restart_postgres),
    Scenario(
        "mosquitto kill -9 + restart",
        faults.kill_broker,
        known_bug="Mosquitto 2.0.11 restores persistent sessions but not their shared"
        " subscriptions, so what it acknowledges before the adapter subscribes again is dropped"
        " (docs/reliability.md)",
    ),
    Scenario("pg_terminate_backend (all)", faults.terminate_connections),
    Scenario(
        "LOCK TABLE iotledger_events",
        faults.lock_events,
        hold_factor=6.0,
        bounded_wait=True,
    ),
    Scenario(
        "mqtt replicas 1 -> 3 -> 1",
        faults.scale_mqtt,
        hold_factor=2.0,
        isolated=True,  # the replicas' sessions stay in the broker's share group
    ),
    Scenario(
        "poison: NUL (REST, MQTT)",
        poison.poison(poison.nul_requests, poison.nul_messages),
        isolated=True,  # an event the views cannot hold may wedge them
    ),
    Scenario(
        "poison: deep JSON, bad UTF-8, cursors",
        poison.poison(poison.edge_requests, poison.edge_messages),
        isolated=True,
    ),
    Scenario(
        "poison: MQTT payload > 1 MiB",
        poison.poison(poison.no_requests, poison.oversized_messages),
        isolated=True,
    ),
)


@dataclass(frozen=True)
class Outcome:
    channel: str
    acknowledged: int
    stored: int  # distinct acknowledged readings found in the read model
    duplicates: int  # rows beyond the first of any reading
    failures: int
    error_window: float | None  # first to last failed request/publish
    errors_after_recovery: float | None  # last failure, seconds after recovery
    slowest: float

    @property
    def lost(self) -> int:
        return self.acknowledged - self.stored


@dataclass(frozen=True)
class Report:
    scenario: Scenario
    size: Size
    outcomes: tuple[Outcome, ...]
    findings: tuple[str, ...]
    settled: float  # seconds after the load stopped until all acknowledged was queryable

    def violations(self) -> list[str]:
        broken = list(self.findings)
        for o in self.outcomes:
            if o.lost or o.duplicates:
                broken.append(f"{o.channel}: {o.lost} lost, {o.duplicates} duplicates")
            late = o.errors_after_recovery or 0.0
            if late > self.size.errors_end:
                broken.append(f"{o.channel}: errors until {late:.1f} s after recovery")
            if self.scenario.bounded_wait and o.channel == "rest" and o.slowest > WAIT_LIMIT:
                broken.append(f"rest: a request waited {o.slowest:.1f} s")
        return broken


@contextlib.contextmanager
def deployment(
    scenario: Scenario, shared: System | None, cluster: Cluster, workdir: Path
) -> Iterator[System]:
    """The shared deployment (one process per role), or one of the scenario's own."""
    if shared is not None and scenario.topology == ROLES and not scenario.isolated:
        yield shared
        return
    with system(cluster, workdir, scenario.topology) as own:
        yield own


def run(scenario: Scenario, size: Size, deployed: System) -> Report:
    devices = fleet(deployed, size.devices)
    loads = {
        "mqtt": devices.mqtt_load(deployed, size.window, budget(size)),
        "rest": devices.rest_load(deployed, budget(size)),
    }
    try:
        for load in loads.values():
            load.start()
        time.sleep(size.lead)
        findings = scenario.fault(deployed, size.hold * scenario.hold_factor)
        recovered = time.monotonic()
        time.sleep(size.tail)
    finally:
        for load in loads.values():
            load.stop()
    stopped = time.monotonic()
    settled = settle(deployed, devices, loads, size.settle) - stopped
    outcomes = tuple(
        outcome(channel, load, count(deployed, devices, channel), recovered)
        for channel, load in loads.items()
    )
    return Report(scenario, size, outcomes, tuple(findings), settled)


def budget(size: Size) -> Budget:
    longest = size.lead + size.hold * 10 + size.tail + 120  # a fault that hangs, say
    return Budget(threading.Event(), size.per_device, size.rate, time.monotonic() + longest)


def count(deployed: System, devices: Fleet, channel: str) -> dict[str, int]:
    return dict(stored(deployed, devices.mqtt if channel == "mqtt" else devices.rest))


def settle(deployed: System, devices: Fleet, loads: dict[str, Load], timeout: float) -> float:
    """When every acknowledged reading is in the read model (or the timeout ran out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(
            load.tally.acked <= count(deployed, devices, channel).keys()
            for channel, load in loads.items()
        ):
            break
        time.sleep(0.5)
    return time.monotonic()


def outcome(channel: str, load: Load, rows: dict[str, int], recovered: float) -> Outcome:
    tally = load.tally
    failures = sorted(tally.failures)
    return Outcome(
        channel=channel,
        acknowledged=len(tally.acked),
        stored=len(tally.acked & rows.keys()),
        duplicates=sum(n - 1 for n in rows.values()),
        failures=len(failures),
        error_window=failures[-1] - failures[0] if failures else None,
        errors_after_recovery=failures[-1] - recovered if failures else None,
        slowest=tally.slowest,
    )
