"""Failed sign-ins, counted in PostgreSQL so that every API process sees one count.

Three limits, each over a sliding window of a minute: failures of one account
from one client (10: a guesser at one password), of one account from anywhere
(100: a distributed guesser, high enough that a stranger's ten failures never lock
the owner out elsewhere), and of one client over any accounts (100: a sprayer).
Each attempt reserves a row per key before the password is checked, under a
per-key advisory lock: so however many processes race, no key ever gets more
attempts than its limit within the window, and a locked key is refused before
any argon2 time is spent. A successful sign-in
deletes its rows (successes do not count); a failed one leaves them, and they
age out of the sliding window. Old rows are pruned a few at a time by every
attempt, skipping rows another transaction holds.

This table is not a read model: it is not rebuilt from events and nothing in it
is worth keeping longer than the window.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
from psycopg import Connection
from psycopg_pool import ConnectionPool

from iotledger.domain.errors import TooManyRequests

LOGIN_ATTEMPTS_DDL = (
    "CREATE TABLE IF NOT EXISTS login_attempts ("
    " id bigserial PRIMARY KEY,"
    " key text NOT NULL,"
    " at timestamptz NOT NULL DEFAULT now())",
    "CREATE INDEX IF NOT EXISTS login_attempts_by_key ON login_attempts (key, at)",
    "CREATE INDEX IF NOT EXISTS login_attempts_by_age ON login_attempts (at)",
)

_LOCK_SPACE = 0x51A7E  # first half of the two-int advisory lock keys: sign-in limits

_LOCK = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"
_SECONDS_LEFT = (
    "SELECT extract(epoch FROM at - now())::float8 + %(window)s FROM login_attempts"
    " WHERE key = %(key)s AND at > now() - make_interval(secs => %(window)s) ORDER BY at"
)
_RESERVE = "INSERT INTO login_attempts (key) SELECT unnest(%s::text[]) RETURNING id"
_PRUNE = (
    "DELETE FROM login_attempts WHERE id IN (SELECT id FROM login_attempts"
    " WHERE at <= now() - make_interval(secs => %s) LIMIT 100 FOR UPDATE SKIP LOCKED)"
)


class Limit(msgspec.Struct, frozen=True):
    key: str
    most: int


class Attempt(msgspec.Struct, frozen=True):
    """The rows an attempt reserved; they stay, as failures, unless it succeeds."""

    ids: tuple[int, ...]


class LoginLimiter:
    def __init__(
        self,
        pool: ConnectionPool[Any],
        *,
        per_account_and_client: int = 10,
        per_account: int = 100,
        per_client: int = 100,
        window: float = 60.0,
    ) -> None:
        self._pool = pool
        self._per_account_and_client = per_account_and_client
        self._per_account = per_account
        self._per_client = per_client
        self._window = window

    def begin(self, account: str, client: str) -> Attempt:
        """Reserve an attempt for this account from this client, or TooManyRequests."""
        limits = sorted(  # locks taken in one order everywhere never deadlock
            (
                Limit(f"account:{account} client:{client}", self._per_account_and_client),
                Limit(f"account:{account}", self._per_account),
                Limit(f"client:{client}", self._per_client),
            ),
            key=lambda limit: limit.key,
        )
        with self._pool.connection() as conn, conn.transaction():
            for limit in limits:
                conn.execute(_LOCK, (_LOCK_SPACE, limit.key))
            wait = max(self._wait(conn, limit) for limit in limits)
            if wait > 0:
                raise TooManyRequests(
                    f"too many failed sign-ins; try again in {wait} seconds", retry_after=wait
                )
            reserved = conn.execute(_RESERVE, ([limit.key for limit in limits],)).fetchall()
            conn.execute(_PRUNE, (self._window,))
        return Attempt(tuple(int(row[0]) for row in reserved))

    def succeeded(self, attempt: Attempt) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM login_attempts WHERE id = ANY(%s)", (list(attempt.ids),))

    def _wait(self, conn: Connection[Any], limit: Limit) -> int:
        """Whole seconds until `limit.key` has a free slot; 0 when it has one now."""
        rows = conn.execute(_SECONDS_LEFT, {"key": limit.key, "window": self._window}).fetchall()
        if len(rows) < limit.most:
            return 0
        seconds_left: float = rows[len(rows) - limit.most][0]
        return max(1, math.ceil(seconds_left))
