"""The faults: each injects one, holds it for `hold` seconds, undoes it and returns.

A fault returns what it found wrong on the way (poison inputs that were not
refused, a system that no longer answers); the counting is the runner's.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import psycopg

from tests.support.faults.system import System

Fault = Callable[[System, float], list[str]]


def kill_role(role: str | None) -> Fault:
    """kill -9 of every process of `role` (None: plain `serve`), then start them again."""

    def fault(deployed: System, hold: float) -> list[str]:
        nodes = deployed.of(role)
        for node in nodes:
            node.signal(signal.SIGKILL)
        time.sleep(hold)
        deployed.restart(nodes)
        return []

    return fault


def restart_postgres(deployed: System, hold: float) -> list[str]:
    """`pg_ctl restart -m immediate`: a crash and a recovery, no hold."""
    deployed.cluster.postgres.restart("immediate")
    return []


def kill_broker(deployed: System, hold: float) -> list[str]:
    """kill -9 of Mosquitto, and a start on the same port with the same persistence."""
    deployed.cluster.broker.kill()
    time.sleep(hold)
    deployed.cluster.broker.start()
    return []


def admin(deployed: System) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(deployed.env["IOTLEDGER_DATABASE_URL"], autocommit=True)


def terminate_connections(deployed: System, hold: float) -> list[str]:
    """`pg_terminate_backend` of every iotledger connection, twice, `hold` apart."""
    for _ in range(2):
        with admin(deployed) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        time.sleep(hold)
    return []


def lock_events(deployed: System, hold: float) -> list[str]:
    """`LOCK TABLE iotledger_events IN ACCESS EXCLUSIVE MODE` held for `hold` seconds."""
    with admin(deployed) as conn, conn.transaction():
        conn.execute("LOCK TABLE iotledger_events IN ACCESS EXCLUSIVE MODE")
        time.sleep(hold)
    return []


def scale_mqtt(deployed: System, hold: float) -> list[str]:
    """Two more `serve --role mqtt` replicas (stable client ids), then SIGTERM to both."""
    extra = deployed.add("mqtt", "mqtt")
    time.sleep(hold)
    deployed.stop(extra)
    return []
