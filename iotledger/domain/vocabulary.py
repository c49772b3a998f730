"""The one map between the dialects' words for a device's and a command's status.

The domain has four statuses. The Device Telemetry dialect names them
(`online`, `pending`, `offline`, `disabled`), the Lambda IoT Core dialect
numbers them (`status_id` 1 ok, 2 pending, 3 lost, 4 disabled), and Lambda
devices answer a device check with `ok`, `pending` or `lost`. Every
translation goes through this module, so the dialects can never drift apart.

A command's domain status has seven values; the Device Telemetry document
knows three (`pending`, `executed`, `failed`). Its `status` keeps to those
three and the whole life travels in the added field `state`: an extension adds
fields, never values to a field the document fixes.
"""

from __future__ import annotations

from enum import StrEnum

from iotledger.domain.commands import CommandStatus
from iotledger.domain.errors import InvalidInput


class DeviceStatus(StrEnum):
    """A device's status as the domain (and its events) knows it."""

    OK = "ok"
    PENDING = "pending"
    LOST = "lost"
    DISABLED = "disabled"


class TelemetryStatus(StrEnum):
    """The Device Telemetry dialect's names, in the domain's order."""

    ONLINE = "online"
    PENDING = "pending"
    OFFLINE = "offline"
    DISABLED = "disabled"


_TELEMETRY = {
    DeviceStatus.OK: TelemetryStatus.ONLINE,
    DeviceStatus.PENDING: TelemetryStatus.PENDING,
    DeviceStatus.LOST: TelemetryStatus.OFFLINE,
    DeviceStatus.DISABLED: TelemetryStatus.DISABLED,
}
_FROM_TELEMETRY = {name: status for status, name in _TELEMETRY.items()}

_STATUS_ID = {
    DeviceStatus.OK: 1,
    DeviceStatus.PENDING: 2,
    DeviceStatus.LOST: 3,
    DeviceStatus.DISABLED: 4,
}
_FROM_STATUS_ID = {number: status for status, number in _STATUS_ID.items()}
STATUS_ID_MIN = min(_FROM_STATUS_ID)
STATUS_ID_MAX = max(_FROM_STATUS_ID)

_CHECK_WORDS = {
    "ok": DeviceStatus.OK,
    "pending": DeviceStatus.PENDING,
    "lost": DeviceStatus.LOST,
}


def telemetry_status(status: DeviceStatus) -> TelemetryStatus:
    return _TELEMETRY[status]


def from_telemetry_status(name: TelemetryStatus) -> DeviceStatus:
    return _FROM_TELEMETRY[name]


def status_id(status: DeviceStatus) -> int:
    return _STATUS_ID[status]


def from_status_id(number: int) -> DeviceStatus:
    """The status of a Lambda `status_id`; InvalidInput outside 1..4."""
    try:
        return _FROM_STATUS_ID[number]
    except KeyError:
        raise InvalidInput(
            f"status_id must be between {STATUS_ID_MIN} and {STATUS_ID_MAX}"
        ) from None


def from_check_word(word: str) -> DeviceStatus:
    """The status a Lambda device reports in a `device_check_response`."""
    try:
        return _CHECK_WORDS[word]
    except KeyError:
        raise InvalidInput(f"status must be one of {', '.join(_CHECK_WORDS)}") from None


class CommandWord(StrEnum):
    """A command's `status` in the Device Telemetry document: only these three."""

    PENDING = "pending"
    EXECUTED = "executed"
    FAILED = "failed"


class CommandState(StrEnum):
    """A command's whole life, in the added field `state`."""

    ISSUED = "issued"
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    EXECUTED = "executed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


_COMMAND = {
    CommandStatus.PENDING: (CommandWord.PENDING, CommandState.ISSUED),
    CommandStatus.DISPATCHED: (CommandWord.PENDING, CommandState.DISPATCHED),
    CommandStatus.ACKNOWLEDGED: (CommandWord.PENDING, CommandState.ACKNOWLEDGED),
    CommandStatus.EXECUTED: (CommandWord.EXECUTED, CommandState.EXECUTED),
    CommandStatus.FAILED: (CommandWord.FAILED, CommandState.FAILED),
    CommandStatus.EXPIRED: (CommandWord.FAILED, CommandState.EXPIRED),
    CommandStatus.CANCELLED: (CommandWord.FAILED, CommandState.CANCELLED),
}


def command_word(status: CommandStatus) -> CommandWord:
    """The document's `status`: pending until the outcome is known, then executed or failed."""
    return _COMMAND[status][0]


def command_state(status: CommandStatus) -> CommandState:
    return _COMMAND[status][1]


def command_statuses(word: str) -> frozenset[CommandStatus]:
    """The domain statuses a `?status=` filter means, in either vocabulary: the
    document's word first (`failed` includes expired and cancelled), else a state."""
    column = 0 if word in {*CommandWord} else 1
    statuses = frozenset(status for status, words in _COMMAND.items() if words[column] == word)
    if not statuses:
        choices = ", ".join(dict.fromkeys([*CommandWord, *CommandState]))
        raise InvalidInput(f"status must be one of {choices}")
    return statuses
