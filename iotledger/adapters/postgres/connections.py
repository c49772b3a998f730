"""The options of every connection iotledger opens to PostgreSQL, built in one place.

PostgreSQL's defaults wait forever: a statement behind a lock someone holds (a
`LOCK TABLE`, a long migration) waited as long as the lock was held, and the request
with it. Every connection therefore starts with a statement timeout, a lock timeout
and an idle-in-transaction timeout (libpq `options`, so they hold from the first
statement, whoever runs it: our pool, eventsourcing's, a feed, the ingest, a leader),
and names itself (`application_name`), so that `pg_stat_activity` shows who holds
what: `iotledger-pool`, `iotledger-eventstore`, `iotledger-feed-devices`, ...

The libpq parameters of `IOTLEDGER_DATABASE_URL` (`sslmode`, `sslrootcert`, ...) join
every connection's options here, eventsourcing's included: whatever opens a connection
speaks TLS when the URL asks for it. A `connect_timeout` given there wins over the one
derived from the statement timeout; an `application_name` replaces the `iotledger` prefix.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import msgspec
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from iotledger.settings import DatabaseUrl, Settings

IDLE_IN_TRANSACTION_TIMEOUT = 10.0
"""Seconds a connection may sit in an open transaction: a stuck client frees its locks."""


class Bounds(NamedTuple):
    """How long any statement may run, and wait for a lock, in seconds."""

    statement_timeout: float
    lock_timeout: float

    @classmethod
    def of(cls, settings: Settings) -> Bounds:
        return cls(settings.statement_timeout, settings.lock_timeout)

    @property
    def connect_timeout(self) -> int:
        """Seconds to wait for a new connection (libpq takes whole seconds, at least 2)."""
        return max(2, math.ceil(self.statement_timeout))


MAINTENANCE = Bounds(statement_timeout=3600.0, lock_timeout=60.0)
"""`iotledger migrate` and `iotledger projections ...`: an operator runs them and watches;
a rebuild writes large batches and may wait for a serving process's readers to let go."""


def for_maintenance(settings: Settings) -> Settings:
    """The settings of a maintenance command: the long bounds of `MAINTENANCE`."""
    return msgspec.structs.replace(
        settings,
        statement_timeout=max(settings.statement_timeout, MAINTENANCE.statement_timeout),
        lock_timeout=max(settings.lock_timeout, MAINTENANCE.lock_timeout),
    )


def connection_options(url: DatabaseUrl, purpose: str, bounds: Bounds) -> dict[str, str | int]:
    """The libpq parameters of a connection for `purpose` (its `application_name`):
    the URL's own (TLS, ...) and iotledger's bounds."""
    settings = {
        "statement_timeout": bounds.statement_timeout,
        "lock_timeout": bounds.lock_timeout,
        "idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION_TIMEOUT,
    }
    given: dict[str, str | int] = dict(url.params)
    prefix = given.pop("application_name", "iotledger")
    return {
        "connect_timeout": bounds.connect_timeout,
        **given,
        "application_name": f"{prefix}-{purpose}",
        "options": " ".join(f"-c {name}={_ms(s)}" for name, s in settings.items()),
    }


def connection_string(url: DatabaseUrl, purpose: str, bounds: Bounds) -> str:
    """The connection string of a connection for `purpose`, bounded by `bounds`."""
    return make_conninfo(str(url), **connection_options(url, purpose, bounds))


def second(conninfo: str, role: str) -> str:
    """The same connection string for a second connection of the same part, named after
    the first: `iotledger-feed-devices` -> `iotledger-feed-devices-ahead`."""
    name = conninfo_to_dict(conninfo).get("application_name") or "iotledger"
    return make_conninfo(conninfo, application_name=f"{name}-{role}")


def _ms(seconds: float) -> int:
    """Milliseconds, at least 1 (0 would mean no timeout at all)."""
    return max(1, round(seconds * 1000))
