"""One simulated device: its own MQTT connection and credentials, readings out, commands
answered.

The connection is iotledger's own `MqttLink` (reconnects, QoS 1 publishes that wait for
the broker's PUBACK) on a clean session: a simulated device leaves nothing queued on the
broker when it goes. Every reading carries an `id` (so a redelivery is stored once) and
its sequence number in the payload (`seq`), by which the simulator finds it again in the
API's listing.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import msgspec
from gmqtt.mqtt.constants import MQTTv311

from iotledger.adapters.mqtt.link import BrokerUnavailable, MqttLink
from iotledger.adapters.mqtt.packets import Message
from iotledger.adapters.mqtt.topics import Topics
from iotledger.settings import MqttUrl
from iotledger.simulator.server import Credentials

_encode = msgspec.json.Encoder().encode


@dataclass
class Tally:
    """What every device did, added up."""

    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    queryable: int = 0
    commands_received: int = 0
    commands_answered: int = 0


class Command(msgspec.Struct):
    """What a device needs of a command to answer it (`T/devices/{id}/commands`)."""

    id: UUID


class SimulatedDevice:
    def __init__(
        self, credentials: Credentials, broker: MqttUrl, topics: Topics, tally: Tally
    ) -> None:
        self.id = credentials.device_id
        self.tally = tally
        self.unconfirmed: dict[int, datetime] = {}
        """Readings the broker acknowledged that the API has not listed yet, by `seq`."""
        self._topics = topics
        self._seq = 0
        self._received: set[UUID] = set()
        self._answered: set[UUID] = set()
        self._climate = Climate(random.Random(self.id.int))
        account = MqttUrl(broker.host, broker.port, credentials.username, credentials.password)
        self.link = MqttLink(
            account,
            f"simulator-{self.id}",
            (topics.commands(self.id),),
            handler=self._answer_commands,
            version=MQTTv311,
            counters=Counter(),
            persistent=False,
        )

    async def send_reading(self) -> None:
        """Publish the next reading (QoS 1) and wait for the broker to acknowledge it."""
        seq, at = self._seq, datetime.now(UTC)
        self._seq += 1
        reading = {
            "id": f"{self.id.hex[:8]}-{seq}",
            "telemetry_type": "environment",
            "payload": {**self._climate.sample(at), "seq": seq},
            "recorded_at": at,
        }
        self.tally.sent += 1
        try:
            await self.link.publish(self._topics.telemetry(self.id), _encode(reading))
        except BrokerUnavailable:
            self.tally.failed += 1
            return
        self.tally.acknowledged += 1
        self.unconfirmed[seq] = at

    async def say(self, status: str) -> None:
        """`online` or `offline` on the device's status topic; best effort."""
        try:
            await self.link.publish(self._topics.status(self.id), _encode({"status": status}))
        except BrokerUnavailable:
            return

    async def _answer_commands(self, messages: Sequence[Message]) -> None:
        for _, payload in messages:
            try:
                command = msgspec.json.decode(payload, type=Command)
            except msgspec.DecodeError:
                continue
            await self._execute(command.id)

    async def _execute(self, command_id: UUID) -> None:
        """Every command succeeds at once; a repeat (same id) is answered again, counted once."""
        self.tally.commands_received += command_id not in self._received
        self._received.add(command_id)
        ack = {"status": "executed", "executed_at": datetime.now(UTC), "result": {"ok": True}}
        try:
            await self.link.publish(self._topics.ack(self.id, command_id), _encode(ack))
        except BrokerUnavailable:
            return  # the server sends it again once the device is back
        self.tally.commands_answered += command_id not in self._answered
        self._answered.add(command_id)


class Climate:
    """A plausible room: temperature and humidity drifting slowly, with a little noise."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._base = rng.uniform(18.0, 24.0)
        self._phase = rng.uniform(0, 2 * math.pi)

    def sample(self, at: datetime) -> dict[str, float]:
        wave = math.sin(at.timestamp() / 600 + self._phase)
        return {
            "temperature": round(self._base + 1.5 * wave + self._rng.gauss(0, 0.1), 2),
            "humidity": round(50 - 8 * wave + self._rng.gauss(0, 0.5), 1),
        }
