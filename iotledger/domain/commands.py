"""Commands to devices: one aggregate per command, so each has its own replayable life.

A command is issued (who, what, payload, until when), then dispatched to the
device (possibly more than once: delivery is at-least-once and the device
recognises a repeat by the command's id), acknowledged, and finally executed or
failed (with the device's time and result). A command that was never sent
before its time to live passed expires; one that was never sent can be
cancelled. Those four endings are final.

Reports arrive out of order and more than once (MQTT QoS 1, REST retries), so a
report of a state the command has already reached or passed is not an error and
records nothing; only a report that contradicts an ending (a failed command
reported executed, an expired one acknowledged) is a Conflict.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from iotledger.domain.errors import Conflict, InvalidInput

MAX_NAME_LENGTH = 100
EXPIRED_REASON = "its time to live passed before it was sent"


class CommandStatus(StrEnum):
    PENDING = "pending"
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    EXECUTED = "executed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


FINAL = frozenset(
    {CommandStatus.EXECUTED, CommandStatus.FAILED, CommandStatus.EXPIRED, CommandStatus.CANCELLED}
)
OUTCOMES = frozenset({CommandStatus.EXECUTED, CommandStatus.FAILED})
"""What a device reports in the end."""

_PROGRESS = {
    CommandStatus.PENDING: 0,
    CommandStatus.DISPATCHED: 1,
    CommandStatus.ACKNOWLEDGED: 2,
    CommandStatus.EXECUTED: 3,
    CommandStatus.FAILED: 3,
}


class Delivery(StrEnum):
    """How a command reaches its device."""

    DEVICE = "device"
    """On the device's own topic, by the dispatcher, as soon as the device is online."""
    LAMBDA = "lambda"
    """On the Lambda IoT Core topic, at once (`sensor_trigger`, `actor_command`)."""


def checked_command_name(name: str) -> str:
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"command_name must be 1 to {MAX_NAME_LENGTH} characters")
    return name


class Command(Aggregate):
    """What was asked of one device, and everything that became of it."""

    device_id: UUID
    command_name: str
    payload: dict[str, Any]
    delivery: Delivery
    expires_at: datetime | None
    status: CommandStatus
    attempts: int
    executed_at: datetime | None
    result: Any

    def __init__(self) -> None:
        """The blank that `Issued` fills in; every state comes from events."""

    class Issued(Aggregate.Created):
        device_id: UUID
        command_name: str
        payload: dict[str, Any]
        delivery: Delivery
        expires_at: datetime | None
        by: str

        def apply(self, command: Command) -> None:
            command.device_id = self.device_id
            command.command_name = self.command_name
            command.payload = self.payload
            command.delivery = self.delivery
            command.expires_at = self.expires_at
            command.status = CommandStatus.PENDING
            command.attempts = 0
            command.executed_at = None
            command.result = None

    class Moved(Aggregate.Event):
        """Base of the events after which the command has the status `reaches`."""

        reaches: ClassVar[CommandStatus]
        by: str

        def apply(self, command: Command) -> None:
            command.status = self.reaches

    class Dispatched(Moved):
        """Handed to the broker for the device (`attempt` counts from 1)."""

        reaches = CommandStatus.DISPATCHED
        attempt: int

        def apply(self, command: Command) -> None:
            super().apply(command)
            command.attempts = self.attempt

    class Acknowledged(Moved):
        """The device has it and has not finished yet."""

        reaches = CommandStatus.ACKNOWLEDGED

    class Finished(Moved):
        """Base of the device's last word: at its own time, with a result."""

        executed_at: datetime
        result: Any

        def apply(self, command: Command) -> None:
            super().apply(command)
            command.executed_at = self.executed_at
            command.result = self.result

    class Executed(Finished):
        reaches = CommandStatus.EXECUTED

    class Failed(Finished):
        reaches = CommandStatus.FAILED

    class Expired(Moved):
        """Its time to live passed before it was ever sent; it never will be."""

        reaches = CommandStatus.EXPIRED

    class Cancelled(Moved):
        reaches = CommandStatus.CANCELLED
        reason: str

    @classmethod
    def issue(
        cls,
        *,
        command_id: UUID,
        device_id: UUID,
        command_name: str,
        payload: dict[str, Any],
        delivery: Delivery,
        expires_at: datetime | None,
        by: str,
        at: datetime,
    ) -> Command:
        if expires_at is not None and expires_at <= at:
            raise InvalidInput("a command's time to live must be positive")
        return cls._create(
            cls.Issued,
            id=command_id,
            device_id=device_id,
            command_name=checked_command_name(command_name),
            payload=payload,
            delivery=delivery,
            expires_at=expires_at,
            by=by,
            timestamp=at,
        )

    def expired_at(self, at: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= at

    def dispatch(self, by: str, at: datetime) -> None:
        """Sent (again): only while it is unsent or unanswered, and not past its time."""
        if self.status not in (CommandStatus.PENDING, CommandStatus.DISPATCHED):
            raise Conflict(f"a {self.status} command cannot be dispatched")
        if self.expired_at(at):
            raise Conflict("the command's time to live has passed")
        self._trigger(self.Dispatched, at, attempt=self.attempts + 1, by=by)

    def acknowledge(self, by: str, at: datetime) -> None:
        if self._reached(CommandStatus.ACKNOWLEDGED):
            return
        self._trigger(self.Acknowledged, at, by=by)

    def finish(
        self, outcome: CommandStatus, executed_at: datetime, result: Any, by: str, at: datetime
    ) -> None:
        """The device's last word: executed or failed, at its own time, with a result."""
        if outcome not in OUTCOMES:
            raise InvalidInput("a command finishes executed or failed")
        if self.status == outcome:
            return
        self._ensure_open(outcome)
        event = self.Executed if outcome == CommandStatus.EXECUTED else self.Failed
        self._trigger(event, at, executed_at=executed_at, result=result, by=by)

    def expire(self, by: str, at: datetime) -> None:
        if self.status != CommandStatus.PENDING or not self.expired_at(at):
            raise Conflict(f"a {self.status} command does not expire")
        self._trigger(self.Expired, at, by=by)

    def cancel(self, reason: str, by: str, at: datetime) -> None:
        if self.status == CommandStatus.CANCELLED:
            return
        if self.status != CommandStatus.PENDING:
            raise Conflict(f"a {self.status} command cannot be cancelled")
        self._trigger(self.Cancelled, at, reason=reason, by=by)

    def _reached(self, status: CommandStatus) -> bool:
        """True when the command is at or past `status`; Conflict if it ended otherwise."""
        if self.status in (CommandStatus.EXPIRED, CommandStatus.CANCELLED):
            raise Conflict(f"the command is already {self.status}")
        return _PROGRESS[self.status] >= _PROGRESS[status]

    def _ensure_open(self, wanted: CommandStatus) -> None:
        if self.status in FINAL:
            raise Conflict(f"the command is already {self.status}, not {wanted}")

    def _trigger(self, event_class: type[Aggregate.Event], at: datetime, **fields: Any) -> None:
        """Trigger an event; its time never runs backwards within one command."""
        self.trigger_event(event_class, timestamp=max(at, self.modified_on), **fields)


COMMAND_EVENTS: tuple[type[Aggregate.Event], ...] = (
    Command.Issued,
    Command.Dispatched,
    Command.Acknowledged,
    Command.Executed,
    Command.Failed,
    Command.Expired,
    Command.Cancelled,
)
"""Every event a command records, for the projections that read them."""
