"""The event log as projections read it: batches by topic, woken by NOTIFY.

Each feed owns one connection that LISTENs on the event table's channel and
holds the projection's advisory lock, so one runner per projection works at a
time across every process; if that connection dies, the lock goes with it and a
standby runner takes over.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import Mapper
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from iotledger.projections.base import Event


def lock_key(name: str) -> int:
    """A stable advisory-lock key for one projection."""
    return zlib.crc32(f"iotledger-projection:{name}".encode())


class PostgresEventFeed:
    def __init__(
        self,
        recorder: PostgresApplicationRecorder,
        mapper: Mapper[UUID],
        conn: psycopg.Connection[Any],
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self._conn = conn
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(recorder.channel_name)))

    def head(self) -> int | None:
        head: int | None = self._recorder.max_notification_id()
        return head

    def read(
        self, after: int | None, upto: int, topics: Sequence[str], limit: int
    ) -> list[tuple[int, Event]]:
        notifications = self._recorder.select_notifications(
            start=after, stop=upto, topics=topics, limit=limit, inclusive_of_start=False
        )
        return [(n.id, self._mapper.to_domain_event(n)) for n in notifications]

    def wait(self, timeout: float) -> None:
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            pass

    def hold(self, name: str) -> bool:
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),)).fetchone()
        return bool(row and row[0])


@contextmanager
def open_feed(
    recorder: PostgresApplicationRecorder, mapper: Mapper[UUID], conninfo: str
) -> Iterator[PostgresEventFeed]:
    with psycopg.connect(
        conninfo, autocommit=True, connect_timeout=10, application_name="iotledger-feed"
    ) as conn:
        yield PostgresEventFeed(recorder, mapper, conn)
