"""Device Telemetry: the commands of a device, and each command's history for auditors.

A command's `status` takes only the document's words: `pending` until its
outcome is known, then `executed` or `failed`. Its whole life is in the added
field `state`: `issued`; `dispatched` once the dispatcher sent it on the
device's MQTT topic (as soon as the device is online); `acknowledged`, then
`executed` or `failed` (with the device's own time and a result) as the device
answers on MQTT, or here with PATCH when it polls over REST. A command never
sent before its `ttl_seconds` (our extension) passed is `expired`, one never
sent can be `cancelled`: both are `failed` to the document, with a `reason`.
An answer that contradicts the command's end answers 409. Commands follow their
device's tenancy: a foreign device's commands answer 404.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from iotledger.api.auth import Caller, Principal
from iotledger.api.deps import off_loop
from iotledger.api.openapi import raises
from iotledger.api.pagination import PAGE_HEADERS, Cursor, Limit, decode_cursor, page_response
from iotledger.api.registry import access_of, cause, device_summary, found
from iotledger.api.settle import record
from iotledger.api.telemetry.wire import (
    HistoryEntry,
    TelemetryCommand,
    history_entries,
    telemetry_command,
)
from iotledger.application.clock import now
from iotledger.application.commands import IssueCommand, ReportCommand
from iotledger.bootstrap import Services
from iotledger.domain.commands import MAX_NAME_LENGTH, CommandStatus, Delivery
from iotledger.domain.errors import CommandNotFound, Conflict, InvalidInput
from iotledger.domain.instants import Instant
from iotledger.domain.vocabulary import CommandState, CommandWord, command_statuses
from iotledger.projections.commands import CommandProjection

MAX_TTL_SECONDS = 30 * 24 * 3600

CommandName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
TtlSeconds = Annotated[
    int,
    msgspec.Meta(
        ge=1,
        le=MAX_TTL_SECONDS,
        description="Our extension: seconds the command may wait for its device; "
        "never sent by then, it expires",
    ),
]


class NewCommand(msgspec.Struct):
    command_name: CommandName
    payload: dict[str, Any] = {}
    ttl_seconds: TtlSeconds | None = None


Reported = Literal["acknowledged", "executed", "failed", "cancelled"]


class CommandUpdate(msgspec.Struct):
    """What became of a command; `executed_at` is the device's time (default: now).

    `status` is the document's (`executed`, `failed`); `state` (our extension) also
    takes `acknowledged` and `cancelled`. `status` still takes those two, as it did
    before `state` existed, so older clients keep working.
    """

    status: Reported | None = None
    state: Reported | None = None
    executed_at: Instant | None = None
    result: Any = None

    def reported(self) -> CommandStatus:
        if self.status is not None and self.state is not None and self.status != self.state:
            raise InvalidInput("status and state disagree")
        said = self.state or self.status
        if said is None:
            raise InvalidInput("status (or state) is required")
        return CommandStatus(said)


StatusFilter = Annotated[
    str | None,
    Parameter(
        description="A document status (pending, executed, failed: failed includes expired "
        "and cancelled) or a state (issued, dispatched, acknowledged, executed, failed, "
        "expired, cancelled)",
    ),
]


class TelemetryCommandsController(Controller):
    path = "/api/v1/devices/{device_id:str}/commands"
    tags = ["Device Telemetry: commands"]

    @post("/", status_code=201)
    async def create_command(
        self,
        device_id: FromPath[UUID],
        data: JSONBody[NewCommand],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> TelemetryCommand:
        at = now()
        ttl = data.ttl_seconds
        command = IssueCommand(
            command_id=uuid4(),
            device_id=device_id,
            access=access_of(principal),
            command_name=data.command_name,
            payload=data.payload,
            delivery=Delivery.DEVICE,
            by=cause(principal),
            at=at,
            expires_at=None if ttl is None else at + timedelta(seconds=ttl),
        )
        await record(services.watch, services.ledger.issue_command, command, CommandProjection)
        return TelemetryCommand(
            id=command.command_id,
            command_name=command.command_name,
            payload=command.payload,
            status=CommandWord.PENDING,
            state=CommandState.ISSUED,
            expires_at=command.expires_at,
        )

    @get("/", response_headers=PAGE_HEADERS)
    async def list_commands(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
        *,
        limit: Limit = 10,
        cursor: Cursor = None,
        status: StatusFilter = None,
    ) -> Response[list[TelemetryCommand]]:
        statuses = None if status is None else command_statuses(status)
        await device_summary(services.devices, device_id, access_of(principal))
        (after,) = decode_cursor(CommandProjection.name, cursor) or (0,)
        page = services.commands.page
        commands, more = await off_loop(page, device_id, after, limit, statuses)
        items = [telemetry_command(command) for command in commands]
        return page_response(items, CommandProjection.name, limit, None if more is None else [more])

    @get("/{command_id:str}")
    async def get_command(
        self,
        device_id: FromPath[UUID],
        command_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> TelemetryCommand:
        await device_summary(services.devices, device_id, access_of(principal))
        return await _current(services, device_id, command_id)

    @patch("/{command_id:str}", opt=raises(Conflict))
    async def update_command(
        self,
        device_id: FromPath[UUID],
        command_id: FromPath[UUID],
        data: JSONBody[CommandUpdate],
        services: NamedDependency[Services],
        caller: NamedDependency[Caller],
    ) -> TelemetryCommand:
        """A device may answer its own commands with its credentials (HTTP Basic)."""
        report = ReportCommand(
            command_id=command_id,
            device_id=device_id,
            access=access_of(caller),
            status=data.reported(),
            by=cause(caller),
            at=now(),
            executed_at=data.executed_at,
            result=data.result,
        )
        await record(services.watch, services.ledger.report_command, report, CommandProjection)
        return await _current(services, device_id, command_id)

    @get("/{command_id:str}/history")
    async def command_history(
        self,
        device_id: FromPath[UUID],
        command_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> list[HistoryEntry]:
        history = services.ledger.command_history
        events = await off_loop(history, device_id, command_id, access_of(principal))
        return history_entries(events)


async def _current(services: Services, device_id: UUID, command_id: UUID) -> TelemetryCommand:
    command = await off_loop(services.commands.command, device_id, command_id)
    return telemetry_command(found(command, CommandNotFound))
