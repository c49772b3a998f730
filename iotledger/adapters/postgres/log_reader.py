"""Reading the log in batches by topic, decoded, with the next batch read ahead.

A projection that is catching up (a rebuild, a backlog) alternates between
reading a batch and writing it; while PostgreSQL takes the writes, the reader
would sit idle. So after every full batch the next one is fetched and decoded
on a second connection in the background, and handed over when it is asked for.
A batch read ahead is used only when it is the one asked for: a full batch does
not depend on how far the log had grown, a shorter one only if that is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from iotledger.adapters.postgres.connections import second
from iotledger.adapters.postgres.eventstore import MsgspecMapper
from iotledger.projections.base import Event
from iotledger.projections.failures import EventFailure, describe

Batch = list[tuple[int, Event]]
Request = tuple[int, int, tuple[str, ...], int]
"""(after, upto, topics, limit) of one read."""


def prepare_reader(conn: psycopg.Connection[Any]) -> None:
    """The log is read in notification order: an index scan that stops at the limit is
    the right plan whatever the (often stale) statistics say; a bitmap scan of the
    whole range and a sort made a replay of a large log crawl."""
    conn.execute("SET enable_bitmapscan = off")
    conn.execute("SET enable_seqscan = off")


class LogReader:
    """Reads on `conn` (the feed's own), and ahead on a connection of its own."""

    def __init__(
        self,
        recorder: PostgresApplicationRecorder,
        mapper: Mapper[UUID],
        conn: psycopg.Connection[Any],
        conninfo: str,
    ) -> None:
        self._conn = conn
        self._conninfo = conninfo
        prepare_reader(conn)
        self._to_event = (
            mapper.event_of if isinstance(mapper, MsgspecMapper) else _via_stored_event(mapper)
        )
        # eventsourcing's own select parses text into dicts: on a replay of millions
        # of readings that costs more than the projection; binary tuples do not.
        self._select = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {}"
            " WHERE notification_id > %s AND notification_id <= %s AND topic = ANY(%s)"
            " ORDER BY notification_id LIMIT %s"
        ).format(sql.Identifier(recorder.datastore.schema, recorder.events_table_name))
        self._helper: ThreadPoolExecutor | None = None
        self._helper_conn: psycopg.Connection[Any] | None = None
        self._ahead: tuple[Request, Future[Batch]] | None = None

    def read(self, after: int | None, upto: int, topics: Sequence[str], limit: int) -> Batch:
        request: Request = (after or 0, upto, tuple(topics), limit)
        batch = self._read_ahead_for(request)
        if batch is None:
            batch = self._fetch(self._conn, request)
        if len(batch) == limit:
            self._read_ahead((batch[-1][0], upto, request[2], limit))
        return batch

    def close(self) -> None:
        if self._helper is not None:
            self._helper.shutdown(wait=True)
        if self._helper_conn is not None:
            self._helper_conn.close()

    def _fetch(self, conn: psycopg.Connection[Any], request: Request) -> Batch:
        after, upto, topics, limit = request
        params = (after, upto, list(topics), limit)
        rows = conn.execute(self._select, params, binary=True).fetchall()
        to_event = self._to_event
        try:
            return [
                (n, to_event(oid, version, topic, state)) for n, oid, version, topic, state in rows
            ]
        except Exception as error:
            raise self._unreadable(rows) from error

    def _unreadable(self, rows: list[Any]) -> Exception:
        """The EventFailure of the first row that cannot be decoded (a rare road)."""
        for n, oid, version, topic, state in rows:
            try:
                self._to_event(oid, version, topic, state)
            except Exception as error:
                return EventFailure(n, f"cannot be decoded: {describe(error)}")
        return RuntimeError("a batch of events could not be decoded, but each one can")

    def _read_ahead(self, request: Request) -> None:
        if self._helper is None:
            self._helper = ThreadPoolExecutor(1, thread_name_prefix="log-read-ahead")
        self._ahead = (request, self._helper.submit(self._fetch_ahead, request))

    def _fetch_ahead(self, request: Request) -> Batch:
        if self._helper_conn is None or self._helper_conn.closed:
            self._helper_conn = psycopg.connect(second(self._conninfo, "ahead"), autocommit=True)
            prepare_reader(self._helper_conn)
        return self._fetch(self._helper_conn, request)

    def _read_ahead_for(self, request: Request) -> Batch | None:
        """The batch read ahead, if it is the one asked for now."""
        if self._ahead is None:
            return None
        (after, upto, topics, limit), future = self._ahead
        self._ahead = None
        if (after, topics, limit) != (request[0], request[2], request[3]):
            return None
        batch = future.result()
        return batch if upto == request[1] or len(batch) == limit else None


def _via_stored_event(mapper: Mapper[UUID]) -> Callable[[UUID, int, str, bytes], Event]:
    def to_event(originator_id: UUID, version: int, topic: str, state: bytes) -> Event:
        return mapper.to_domain_event(StoredEvent(originator_id, version, topic, state))

    return to_event
