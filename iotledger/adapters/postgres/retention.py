"""Retention of the readings read model: readings older than N days (device time) leave it.

Only the read model is pruned: the log keeps every `Reading.Recorded` (the log's own
storage is bounded otherwise, see docs/scaling.md), so a rebuild puts old readings
back for a while, until the next round takes them out again.

A round walks the devices that have readings (`latest_readings`, one row per device
and type) and deletes each one's old readings through `readings_by_device_time`, a
batch at a time, each batch a transaction of its own: row locks on at most `batch`
rows, held for milliseconds, so the readings projection, which only inserts, never
waits long. Then the device's latest values older than the cut go too: a latest value
points at a reading, and a type whose every reading is gone has none. Aggregates are
computed from the readings table, so they cover the retained window only.

One process prunes at a time (`leadership.lead`, in the process that runs the
projections); a round every `EVERY` seconds keeps the model within a few minutes of
its bound.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from iotledger.application.clock import now

log = logging.getLogger(__name__)

EVERY = 300.0
BATCH = 1000

_DEVICES = "SELECT DISTINCT device_id FROM latest_readings ORDER BY device_id"
_PRUNE_READINGS = (
    "DELETE FROM readings WHERE lambda_id IN (SELECT lambda_id FROM readings"
    " WHERE device_id = %s AND recorded_at < %s LIMIT %s)"
)
_PRUNE_LATEST = "DELETE FROM latest_readings WHERE device_id = %s AND recorded_at < %s"


class ReadingRetention:
    def __init__(self, pool: ConnectionPool[Any], days: int, batch: int = BATCH) -> None:
        self.pool = pool
        self.keep = timedelta(days=days)
        self.batch = batch

    async def round(self) -> None:
        """One pruning pass, off the event loop."""
        pruned = await asyncio.to_thread(self.prune, now())
        if pruned:
            log.info("retention: %d readings older than %s left the read model", pruned, self.keep)

    def prune(self, now: datetime) -> int:
        """Delete readings recorded before `now` minus the retention; how many went."""
        cut = now - self.keep
        return sum(self._prune_device(device_id, cut) for device_id in self._devices())

    def _devices(self) -> list[UUID]:
        with self.pool.connection() as conn:
            return [row[0] for row in conn.execute(_DEVICES).fetchall()]

    def _prune_device(self, device_id: UUID, cut: datetime) -> int:
        pruned = 0
        while True:
            with self.pool.connection() as conn:
                deleted: int = conn.execute(_PRUNE_READINGS, (device_id, cut, self.batch)).rowcount
            pruned += deleted
            if deleted < self.batch:
                break
        with self.pool.connection() as conn:
            conn.execute(_PRUNE_LATEST, (device_id, cut))
        return pruned
