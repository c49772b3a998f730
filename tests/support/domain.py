"""The domain's services in memory, on the event store's real msgspec mapping: as fast as a
unit test must be, and with the bytes PostgreSQL would keep."""

from __future__ import annotations

from datetime import UTC, datetime

MSGSPEC_STORE = {
    "TRANSCODER_TOPIC": "iotledger.adapters.postgres.eventstore:MsgspecTranscoder",
    "MAPPER_TOPIC": "iotledger.adapters.postgres.eventstore:MsgspecMapper",
}
START = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)
