"""Who is in a deployment's share group, so that the last member to stop stays in it.

Mosquitto routes a share group's messages to every member with a session,
connected or not, so an `mqtt` process that stops for good must unsubscribe
first, or its share of the messages waits in a session nobody reads. But a
group without members is sent nothing at all: if every process left on
SIGTERM, what devices publish while the deployment restarts (a new release,
the one `serve` restarted) would be acknowledged to them and dropped. So a
stopping process leaves only if another member remains; the last one keeps its
subscriptions, and its session queues everything until a process with its
client id comes back (within `IOTLEDGER_MQTT_SESSION_EXPIRY`).

Members are counted in PostgreSQL, which every process of a deployment shares:
each holds a shared advisory lock on the group for as long as it runs (on a
connection of its own, so a crashed process stops counting at once), and the
decisions to leave are taken one at a time under an exclusive lock, each
leaver letting go of its membership before the next one counts.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import psycopg

from iotledger.adapters.postgres.connections import second
from iotledger.adapters.postgres.feed import lock_key

log = logging.getLogger(__name__)

OTHER_MEMBERS = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND classid = 0 AND objid = %s::bigint::oid AND objsubid = 1
  AND mode = 'ShareLock' AND granted AND pid <> %s
"""


class GroupMembership:
    """This process's membership of a share group, held for as long as it runs."""

    def __init__(self, conninfo: str, group: str) -> None:
        self._conninfo = conninfo
        self._member = lock_key(f"mqtt-group:{group}")
        self._leaving = lock_key(f"mqtt-group-leaving:{group}")
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._pid = 0

    async def join(self) -> None:
        """Count as a member; a database that does not answer only makes a stop stay."""
        try:
            self._conn = await self._connect("member")
            await self._conn.execute("SELECT pg_advisory_lock_shared(%s)", (self._member,))
            self._pid = self._conn.info.backend_pid
        except psycopg.Error as error:
            log.warning("MQTT share group membership not recorded (%s)", error)

    async def depart(self) -> bool:
        """Stop counting as a member: True if another remains (so this one may leave)."""
        try:
            async with await self._connect("leaving") as conn:
                await conn.execute("SELECT pg_advisory_lock(%s)", (self._leaving,))
                cursor = await conn.execute(OTHER_MEMBERS, (self._member, self._pid))
                row = await cursor.fetchone()
                await self.close()  # before the next leaver counts
                return bool(row and row[0])
        except psycopg.Error as error:
            log.warning("MQTT share group members not counted (%s); staying in it", error)
            return False
        finally:
            await self.close()

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.close()
            self._conn = None

    async def _connect(self, purpose: str) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            second(self._conninfo, purpose),  # iotledger-mqtt-group-member, ...-leaving
            autocommit=True,
            connect_timeout=5,
        )
