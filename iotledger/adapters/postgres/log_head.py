"""The head of the log: its newest position, for reads that must see every write
acknowledged before them (the readings' reads, `api.readings`; the dynsec reconciler).

Asked by many requests at once, it is one query for all those waiting at that moment
(`lookup.BatchedLookup`), and always a query that started after the caller asked.
"""

from __future__ import annotations

from collections.abc import Collection

from eventsourcing.postgres import PostgresApplicationRecorder

from iotledger.adapters.postgres.lookup import BatchedLookup

_HEAD = "head"


class LogHead:
    def __init__(self, recorder: PostgresApplicationRecorder) -> None:
        self._recorder = recorder
        self._lookup: BatchedLookup[str, int] = BatchedLookup(self._fetch)

    async def get(self) -> int:
        """The newest position of the log (0: an empty log)."""
        return await self._lookup.get(_HEAD) or 0

    def _fetch(self, _keys: Collection[str]) -> dict[str, int]:
        return {_HEAD: self._recorder.max_notification_id() or 0}
