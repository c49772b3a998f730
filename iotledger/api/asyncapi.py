"""`/schema/asyncapi.json`: both MQTT protocols as an AsyncAPI 3.0 document.

Made from what the adapter itself uses: the topics from `adapters.mqtt.topics` (for the
configured base topic), each payload's schema from the msgspec Struct that decodes or
encodes it. A message changed there is changed here. Operations are the server's:
`receive` what devices publish, `send` what iotledger publishes.
"""

from __future__ import annotations

import re
from typing import Any, Literal, NamedTuple, cast
from uuid import UUID

import msgspec

from iotledger.adapters.mqtt.messages import (
    CHECK_RESPONSE,
    READING_TYPES,
    ClaimRequest,
    CommandAck,
    DeviceCheckResponse,
    Discovery,
    SensorReading,
    StatusReport,
    Telemetry,
)
from iotledger.adapters.mqtt.topics import Channel, Topics
from iotledger.api.lambda_iot.mqtt_actions import ActorCommand, Ping, SensorTrigger
from iotledger.projections.device_checks import CheckRequest
from iotledger.projections.dispatcher import CommandMessage
from iotledger.settings import Settings

VERSION = "3.0.0"
SCHEMAS = "#/components/schemas/{name}"


class Message(NamedTuple):
    """One kind of message: its channel, who publishes it, and the type of its payload."""

    name: str
    channel: Channel
    action: Literal["send", "receive"]
    payload: Any
    summary: str
    kinds: frozenset[str] = frozenset()
    """The `type` values of a Lambda IoT Core message whose Struct does not carry its tag."""


MESSAGES = (
    Message(
        "sensorReading",
        Channel.LAMBDA,
        "receive",
        SensorReading,
        "A sensor's reading; stored if the sensor is in the shared fleet",
        READING_TYPES,
    ),
    Message(
        "deviceCheckResponse",
        Channel.LAMBDA,
        "receive",
        DeviceCheckResponse,
        "A device's answer to a device check",
        frozenset({CHECK_RESPONSE}),
    ),
    Message("deviceCheckRequest", Channel.LAMBDA, "send", CheckRequest, "Is this device there?"),
    Message("sensorTrigger", Channel.LAMBDA, "send", SensorTrigger, "Take a reading now"),
    Message("actorCommand", Channel.LAMBDA, "send", ActorCommand, "Act: write to an actor"),
    Message("ping", Channel.LAMBDA, "send", Ping, "`GET /mqttping`'s message"),
    Message(
        "discovery",
        Channel.DISCOVERY,
        "receive",
        Discovery,
        "A device announces itself, its sensors and its actors",
    ),
    Message(
        "telemetry",
        Channel.TELEMETRY,
        "receive",
        Telemetry | list[Telemetry],
        "One reading, or an array of readings stored all or none",
    ),
    Message("command", Channel.COMMANDS, "send", CommandMessage, "A command for the device"),
    Message("commandAck", Channel.ACK, "receive", CommandAck, "The device's answer to a command"),
    Message(
        "status",
        Channel.STATUS,
        "receive",
        StatusReport,
        "The device's status; usable as its will (`offline`)",
    ),
    Message(
        "claim",
        Channel.CLAIM,
        "receive",
        ClaimRequest,
        "The device may be claimed with this secret for a while (`POST .../claim`)",
    ),
)

_DEVICE = cast(UUID, "{device_id}")
_COMMAND = cast(UUID, "{command_id}")
"""The topic methods only format their ids: placeholders give the address templates."""


def addresses(topics: Topics) -> dict[Channel, str]:
    return {
        Channel.LAMBDA: topics.base,
        Channel.DISCOVERY: topics.discovery,
        Channel.TELEMETRY: topics.telemetry(_DEVICE),
        Channel.COMMANDS: topics.commands(_DEVICE),
        Channel.ACK: topics.ack(_DEVICE, _COMMAND),
        Channel.STATUS: topics.status(_DEVICE),
        Channel.CLAIM: topics.claim(_DEVICE),
    }


def asyncapi_document(settings: Settings) -> dict[str, Any]:
    payloads, schemas = msgspec.json.schema_components(
        [message.payload for message in MESSAGES], ref_template=SCHEMAS
    )
    return {
        "asyncapi": VERSION,
        "info": {
            "title": "iotledger MQTT",
            "version": "0.1.0",
            "description": "The Lambda IoT Core protocol (on the base topic and its "
            "`discovery`) and the Device Telemetry per-device topics. Operations are "
            "iotledger's: it receives what devices publish and sends the rest.",
        },
        "defaultContentType": "application/json",
        "servers": {"broker": server(settings)},
        "channels": channels(Topics(settings.mqtt_topic)),
        "operations": {
            f"{m.action}{m.name[0].upper()}{m.name[1:]}": operation(m) for m in MESSAGES
        },
        "components": {
            "messages": {
                m.name: message(m, payload) for m, payload in zip(MESSAGES, payloads, strict=True)
            },
            "schemas": schemas,
        },
    }


def server(settings: Settings) -> dict[str, Any]:
    url = settings.mqtt_url
    host = (
        f"{settings.host}:{settings.embedded_mqtt_port}"
        if url is None
        else f"{url.host}:{url.port}"
    )
    return {"host": host, "protocol": "mqtt", "description": "The broker iotledger uses"}


def channels(topics: Topics) -> dict[str, Any]:
    return {
        channel.value: {
            "address": address,
            "messages": {
                m.name: {"$ref": f"#/components/messages/{m.name}"}
                for m in MESSAGES
                if m.channel == channel
            },
            **parameters(address),
        }
        for channel, address in addresses(topics).items()
    }


def parameters(address: str) -> dict[str, Any]:
    names = re.findall(r"\{(\w+)\}", address)
    if not names:
        return {}
    return {"parameters": {name: {"description": f"The {name} (a UUID)"} for name in names}}


def operation(m: Message) -> dict[str, Any]:
    channel = m.channel.value
    return {
        "action": m.action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": m.summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{m.name}"}],
    }


def message(m: Message, payload: dict[str, Any]) -> dict[str, Any]:
    if m.kinds:  # the `type` the Lambda envelope carries, beside the Struct's own fields
        kind = {"type": "object", "properties": {"type": {"enum": sorted(m.kinds)}}}
        payload = {"allOf": [payload, kind | {"required": ["type"]}]}
    return {"name": m.name, "summary": m.summary, "payload": payload}
