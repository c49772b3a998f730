"""The log as live streams read it: pages of a device's events, or of every visible device.

A stream reads the log itself, after its own position, so what it sends and where
it resumes are the log's positions: nothing is kept per client but that number.
Events name their device in three ways: a device's own events are its (originator
id), a reading and a command's `Issued` carry `device_id`, and a command's later
events are the command's (looked up by its `Issued`, in one query per page).

For one device the page is filtered in PostgreSQL first: its own events, events
whose state holds the bytes `"device_id":"<id>"` (a reading, an `Issued`; msgspec
writes them exactly so), and the later command events; what that lets through (a
payload that happens to hold those bytes, another device's command) is dropped here,
where each event's device is known. Pages end at the head of the log as it was when
the page began (commit order is log order: everything up to it is visible), so a
device that is quiet while others write never re-reads what it skipped.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple
from uuid import UUID

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic
from psycopg import sql
from psycopg_pool import ConnectionPool

from iotledger.adapters.postgres.eventstore import MsgspecMapper
from iotledger.application.readings import RECORDED_TOPIC
from iotledger.domain.commands import COMMAND_EVENTS, Command
from iotledger.domain.devices import DEVICE_EVENTS, Device, DeviceAccess
from iotledger.projections.base import Event, topics_of

STREAM_TOPICS: dict[str, tuple[str, ...]] = {
    "telemetry": (RECORDED_TOPIC,),
    "status": topics_of(Device.StatusChanged),
    "command": topics_of(*COMMAND_EVENTS),
    "device": topics_of(*(e for e in DEVICE_EVENTS if e is not Device.StatusChanged)),
}
"""The kinds of events a stream sends, and the topics of each."""
KINDS = {topic: kind for kind, topics in STREAM_TOPICS.items() for topic in topics}
_LATER_COMMAND_TOPICS = [t for t in STREAM_TOPICS["command"] if t != get_topic(Command.Issued)]


class Entry(NamedTuple):
    position: int
    kind: str
    device_id: UUID
    event: Event


class Page(NamedTuple):
    entries: list[Entry]
    end: int
    """The position the next page starts after."""
    full: bool


class DeviceLog:
    def __init__(
        self,
        pool: ConnectionPool[Any],
        recorder: PostgresApplicationRecorder,
        mapper: MsgspecMapper,
    ) -> None:
        self._pool = pool
        self._mapper = mapper
        events = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
        self._head = sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(events)
        # The log is read in notification order: pin the plan to the ordered index
        # scan that stops at the limit (as `log_reader` does), whatever the statistics.
        self._plan = "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off"
        # A page holds at most `limit` events, and stops after the event that reaches
        # `budget` bytes of state: what a stream holds in memory is bounded by both.
        self._page = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM ("
            "SELECT *, sum(octet_length(state)) OVER (ORDER BY notification_id) AS upto FROM {}"
            " WHERE notification_id > %(after)s AND notification_id <= %(head)s"
            " AND topic = ANY(%(topics)s) AND (%(device)s::uuid IS NULL"
            " OR originator_id = %(device)s OR position(%(needle)s::bytea IN state) > 0"
            " OR topic = ANY(%(later)s))"
            " ORDER BY notification_id LIMIT %(limit)s"
            ") AS page WHERE upto - octet_length(state) < %(budget)s ORDER BY notification_id"
        ).format(events)
        self._first_events = sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM {}"
            " WHERE originator_id = ANY(%s) AND originator_version = 1"
        ).format(events)
        self._claims = sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM {}"
            " WHERE originator_id = ANY(%s) AND topic = %s ORDER BY notification_id"
        ).format(events)

    def head(self) -> int:
        with self._pool.connection() as conn:
            return int(_one(conn.execute(self._head)))

    def page(
        self,
        after: int,
        kinds: Collection[str],
        access: DeviceAccess,
        device_id: UUID | None = None,
        *,
        limit: int = 500,
        budget: int = 256 * 1024,
    ) -> Page:
        """The next events after `after` of these kinds, of `device_id` (else of every
        device), of devices `access` allows: at most `limit` of them, and none after the
        one that reaches `budget` bytes (a reading may weigh a MiB)."""
        topics = [topic for kind in kinds for topic in STREAM_TOPICS[kind]]
        with self._pool.connection() as conn:
            head = int(_one(conn.execute(self._head)))
            with conn.transaction():
                conn.execute(self._plan)
                params = _params(after, head, topics, device_id, limit) | {"budget": budget}
                rows = conn.execute(self._page, params, binary=True).fetchall()
            entries = [e for e in self._entries(conn, rows) if device_id in (None, e.device_id)]
            owners = self._owners(conn, {entry.device_id for entry in entries})
        full = len(rows) == limit or sum(len(row[4]) for row in rows) >= budget
        visible = [
            e for e in entries if e.device_id in owners and access.allows(owners[e.device_id])
        ]
        return Page(visible, rows[-1][0] if full else max(head, after), full)

    def _entries(self, conn: psycopg.Connection[Any], rows: list[Any]) -> list[Entry]:
        events = [
            (n, topic, self._mapper.event_of(oid, v, topic, state))
            for n, oid, v, topic, state in rows
        ]
        commands = {e.originator_id for _, _, e in events if _command_after_issue(e)}
        issued = self._firsts(conn, commands)
        return [Entry(n, KINDS[topic], _device_of(e, issued), e) for n, topic, e in events]

    def _owners(
        self, conn: psycopg.Connection[Any], devices: Collection[UUID]
    ) -> dict[UUID, UUID | None]:
        """Whose each device is now: its registrant's, or its last claimant's (None: the
        shared fleet's), from the log itself, so that a stream never waits for a view."""
        owners = {
            device_id: event.owner for device_id, event in self._firsts(conn, devices).items()
        }
        rows = conn.execute(self._claims, (list(owners), _CLAIMED), binary=True).fetchall()
        for row in rows:  # oldest first: the last claim wins
            claimed = self._mapper.event_of(*row)
            assert isinstance(claimed, Device.Claimed)
            owners[row[0]] = claimed.owner
        return owners

    def _firsts(self, conn: psycopg.Connection[Any], ids: Collection[UUID]) -> dict[UUID, Any]:
        """The first event of each of these aggregates (a command's `Issued`, a device's
        `Registered`)."""
        if not ids:
            return {}
        rows = conn.execute(self._first_events, (list(ids),), binary=True).fetchall()
        return {row[0]: self._mapper.event_of(*row) for row in rows}


_CLAIMED = get_topic(Device.Claimed)


def _params(
    after: int, head: int, topics: list[str], device_id: UUID | None, limit: int
) -> dict[str, Any]:
    needle = b"" if device_id is None else f'"device_id":"{device_id}"'.encode()
    return {
        "after": after,
        "head": head,
        "topics": topics,
        "device": device_id,
        "needle": needle,
        "later": _LATER_COMMAND_TOPICS,
        "limit": limit,
    }


def _command_after_issue(event: Event) -> bool:
    return isinstance(event, COMMAND_EVENTS) and not isinstance(event, Command.Issued)


def _device_of(event: Any, issued: dict[UUID, Any]) -> UUID:
    if isinstance(event, DEVICE_EVENTS):
        device_id: UUID = event.originator_id
    elif _command_after_issue(event):
        device_id = issued[event.originator_id].device_id
    else:
        device_id = event.device_id  # a reading, a command's `Issued`
    return device_id


def _one(cursor: psycopg.Cursor[Any]) -> Any:
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("a query that always answers one row answered none")
    return row[0]
