"""The Device Telemetry dialect's representations that more than one controller sends.

A device, a reading, a command and an event of history look the same on every path
that shows them (a list, a download, the live stream), so each is made here once, and
no controller imports another.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar.params import QueryParameter

from iotledger.domain.devices import Device, Metadata
from iotledger.domain.vocabulary import (
    CommandState,
    CommandWord,
    TelemetryStatus,
    command_state,
    command_word,
    telemetry_status,
)
from iotledger.projections.commands import CommandSummary
from iotledger.projections.devices import DeviceSummary
from iotledger.projections.readings import ReadingRow

_DEVICE_TIME = "RFC 3339 date-time with an offset, compared with the device time"
Since = Annotated[str | None, QueryParameter(name="from", description=f"{_DEVICE_TIME}: from")]
Until = Annotated[str | None, QueryParameter(name="to", description=f"{_DEVICE_TIME}: before")]

_ENVELOPE = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "by"}
)


class TelemetryDevice(msgspec.Struct):
    id: UUID
    name: str
    device_type: str
    status: TelemetryStatus
    metadata: Metadata


class TelemetryReading(msgspec.Struct):
    id: UUID
    telemetry_type: str
    payload: dict[str, Any]
    recorded_at: datetime


class TelemetryCommand(msgspec.Struct, omit_defaults=True):
    id: UUID
    command_name: str
    payload: dict[str, Any]
    status: CommandWord
    state: CommandState
    executed_at: datetime | None = None
    result: Any = None
    expires_at: datetime | None = None
    reason: str | None = None


class HistoryEntry(msgspec.Struct):
    type: str
    version: int
    timestamp: datetime
    caused_by: str
    data: dict[str, Any]


def telemetry_device(device: DeviceSummary | Device) -> TelemetryDevice:
    return TelemetryDevice(
        id=device.id,
        name=device.name,
        device_type=device.device_type,
        status=telemetry_status(device.status),
        metadata=device.metadata,
    )


def telemetry_reading(row: ReadingRow) -> TelemetryReading:
    return TelemetryReading(row.id, row.telemetry_type, row.payload, row.recorded_at)


def telemetry_command(command: CommandSummary) -> TelemetryCommand:
    return TelemetryCommand(
        id=command.id,
        command_name=command.command_name,
        payload=command.payload,
        status=command_word(command.status),
        state=command_state(command.status),
        executed_at=command.executed_at,
        result=command.result,
        expires_at=command.expires_at,
        reason=command.reason,
    )


def history_entries(events: Sequence[Any]) -> list[HistoryEntry]:
    """An aggregate's events as auditors read them: the envelope apart, the rest as data."""
    return [
        HistoryEntry(
            type=type(event).__qualname__,
            version=event.originator_version,
            timestamp=event.timestamp,
            caused_by=getattr(event, "by", "system"),
            data={k: v for k, v in vars(event).items() if k not in _ENVELOPE},
        )
        for event in events
    ]
