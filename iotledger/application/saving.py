"""The reference `ReadingAppender`: new readings saved as any aggregate is.

It goes through eventsourcing's public `Application.save` and nothing else, so it is
plainly right: the domain tests record readings through it in memory, and
`tests/integration/test_readings_engine.py` holds the rows of the COPY appender (which writes
eventsourcing's table itself, for speed) equal to its rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import cast
from uuid import UUID

from eventsourcing.application import Application

from iotledger.application.clock import now
from iotledger.application.readings import (
    RECORDED_TOPIC,
    AppendReadings,
    DeviceOwners,
    Outcome,
    RecordReading,
)
from iotledger.domain.devices import DeviceAccess
from iotledger.domain.errors import DeviceNotFound
from iotledger.domain.readings import readings_visible


class SavingReadingAppender:
    """One `Application.save` per call. Plainly right rather than fast: a repeat is found
    by asking the log for the reading, and its original's position by reading the log's
    `Recorded` events from the start."""

    def __init__(
        self,
        app: Application[UUID],
        owners: DeviceOwners | None = None,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._app = app
        self._owners = owners
        self._clock = clock

    async def append(self, cmd: AppendReadings) -> list[Outcome]:
        return await asyncio.to_thread(self.append_now, cmd)

    def append_now(self, cmd: AppendReadings) -> list[Outcome]:
        """`append`, blocking its caller."""
        received_at = self._clock()
        if cmd.access is not None:
            self._admit(cmd.access, {reading.device_id for reading in cmd.readings})
        ids = [reading.reading_id for reading in cmd.readings]
        first: dict[UUID, RecordReading] = {}
        for i, reading in zip(ids, cmd.readings, strict=True):
            first.setdefault(i, reading)
        earlier = {i for i in first if self._app.recorder.select_events(i, lte=1)}
        new = [first[i].to_reading(received_at) for i in first if i not in earlier]
        recordings = self._app.save(*new) if new else []
        positions = {r.domain_event.originator_id: r.notification.id for r in recordings}
        positions |= self._positions(earlier)
        outcomes = []
        for i in ids:
            outcomes.append(Outcome(i, positions[i], i not in earlier))
            earlier.add(i)
        return outcomes

    def _admit(self, access: DeviceAccess, devices: set[UUID]) -> None:
        if self._owners is None:
            raise TypeError("this appender was made without `owners`: it cannot check access")
        if not readings_visible(access, devices, self._owners.owners(devices)):
            raise DeviceNotFound()

    def _positions(self, reading_ids: set[UUID]) -> dict[UUID, int]:
        """Where the `Recorded` events of these readings are in the log."""
        found: dict[UUID, int] = {}
        start = 1
        while len(found) < len(reading_ids):
            page = self._app.recorder.select_notifications(start, 1000, topics=[RECORDED_TOPIC])
            if not page:
                raise RuntimeError("a reading the log holds has no `Recorded` notification")
            found |= {
                cast(UUID, n.originator_id): n.id for n in page if n.originator_id in reading_ids
            }
            start = page[-1].id + 1
        return found
