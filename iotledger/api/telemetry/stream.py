"""Device Telemetry: the live stream of a device's events, or of every device one may see.

Server-Sent Events (`api.event_stream`), read from the log itself: each event's
`id` is its log position, so `Last-Event-ID` (or `?after=`) resumes exactly after
it, also from another process or after a restart. Each event's data is what the
list endpoints show: a reading as the telemetry list does, a command as the
commands list does right after that step of its life (folded by the commands
projection itself), a device as `GET /api/v1/devices/{id}` did right after that
change. Without a position the stream starts at the head of the log: what comes next.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, NamedTuple
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, Parameter
from litestar.types import ASGIApp

from iotledger.adapters.postgres.device_log import STREAM_TOPICS, Entry
from iotledger.api.auth import Principal
from iotledger.api.deps import off_loop
from iotledger.api.event_stream import EventStream, Frames, frame
from iotledger.api.registry import access_of, device_summary, found
from iotledger.api.telemetry.wire import (
    TelemetryDevice,
    telemetry_command,
    telemetry_device,
    telemetry_reading,
)
from iotledger.bootstrap import Services
from iotledger.domain.devices import Device, DeviceAccess
from iotledger.domain.errors import CommandNotFound, InvalidInput
from iotledger.domain.vocabulary import TelemetryStatus, telemetry_status
from iotledger.projections.commands import command_after
from iotledger.projections.readings import row_of

_encode = msgspec.json.Encoder().encode
_KINDS = ",".join(STREAM_TOPICS)

Types = Annotated[
    str | None, Parameter(description=f"Comma-separated kinds of events to send: {_KINDS} (all)")
]
After = Annotated[
    int | None, Parameter(ge=0, description="Resume after this log position (an event's `id`)")
]
LastEventId = Annotated[
    str | None,
    HeaderParameter(name="Last-Event-ID", description="As `after`; what EventSource resends"),
]


class StatusChange(msgspec.Struct):
    status: TelemetryStatus
    changed_at: datetime


class DeviceChange(msgspec.Struct):
    change: str
    """The event's name: Registered, Renamed, Updated, MetadataReplaced, Deleted, SensorAdded..."""
    device: TelemetryDevice
    """The device right after the change (as it was, for Deleted)."""


class StreamController(Controller):
    tags = ["Device Telemetry: stream"]

    @get("/api/v1/devices/{device_id:str}/stream", media_type="text/event-stream")
    async def device_stream(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        *,
        types: Types = None,
        after: After = None,
        last_event_id: LastEventId = None,
    ) -> ASGIApp:
        """Every event of the device as it is recorded: `event:` is its kind, `id:` its
        log position, `data:` its JSON."""
        access = access_of(principal)
        await device_summary(services.devices, device_id, access)
        return await _stream(services, access, _scope(types, device_id), last_event_id or after)

    @get("/api/v1/stream", media_type="text/event-stream")
    async def stream(
        self,
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        *,
        types: Types = None,
        after: After = None,
        last_event_id: LastEventId = None,
    ) -> ASGIApp:
        """As the device stream, for every device the caller may see (theirs and the
        shared fleet's); each event's data also names its `device_id`."""
        return await _stream(services, access_of(principal), _scope(types), last_event_id or after)


class Scope(NamedTuple):
    kinds: tuple[str, ...]
    device_id: UUID | None
    """None: every device the caller may see."""


async def _stream(
    services: Services, access: DeviceAccess, scope: Scope, after: str | int | None
) -> ASGIApp:
    start = _position(after)
    if start is None:
        start = await off_loop(services.device_log.head)

    async def read(after: int) -> Frames:
        return await off_loop(_frames, services, scope, access, after)

    settings = services.settings
    return EventStream(
        read, start, services.log_wake, settings.stream_heartbeat, settings.stream_stall_timeout
    )


def _scope(types: str | None, device_id: UUID | None = None) -> Scope:
    if types is None:
        return Scope(tuple(STREAM_TOPICS), device_id)
    kinds = tuple(dict.fromkeys(kind.strip() for kind in types.split(",")))
    if not set(kinds) <= set(STREAM_TOPICS):
        raise InvalidInput(f"types must be a comma-separated list of {_KINDS}")
    return Scope(kinds, device_id)


def _position(after: str | int | None) -> int | None:
    """Where to resume: `Last-Event-ID` (what EventSource sends) before `after`."""
    if after is None or isinstance(after, int):
        return after
    if not after.strip().isdigit():
        raise InvalidInput("Last-Event-ID must be a log position (an event's id)")
    return int(after)


def _frames(services: Services, scope: Scope, access: DeviceAccess, after: int) -> Frames:
    """The next page of events after `after`, rendered (in a worker thread: devices and
    commands are folded from their events)."""
    page = services.device_log.page(after, scope.kinds, access, scope.device_id)
    of_many = scope.device_id is None
    body = b"".join(
        frame(entry.position, entry.kind, _data(services, entry, of_many)) for entry in page.entries
    )
    return Frames(body, page.end, page.full)


def _data(services: Services, entry: Entry, of_many: bool) -> bytes:
    """The event's data; in a stream of many devices, with its `device_id` first."""
    data = _encode(_render(services, entry))
    if of_many:  # every rendering is a non-empty JSON object
        return b'{"device_id":"%s",%s' % (str(entry.device_id).encode(), data[1:])
    return data


def _render(services: Services, entry: Entry) -> msgspec.Struct:
    event: Any = entry.event
    if entry.kind == "telemetry":
        return telemetry_reading(row_of(entry.position, event))
    if entry.kind == "status":
        return StatusChange(telemetry_status(event.status), event.timestamp)
    ledger = services.ledger
    if entry.kind == "command":
        life = ledger.events.get(event.originator_id, lte=event.originator_version)
        return telemetry_command(found(command_after(life), CommandNotFound))
    device: Device = ledger.repository.get(entry.device_id, version=event.originator_version)
    return DeviceChange(type(event).__name__, telemetry_device(device))
