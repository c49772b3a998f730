"""The policies' `Sender` over MQTT: a device's command topic, and the fleet's base topic.

A message is sent when the broker has acknowledged it (`MqttLink.publish`); when it
has not, the link's `BrokerUnavailable` becomes the port's `Unreachable`, which is
all a policy needs to know to try again at its next round.
"""

from __future__ import annotations

from uuid import UUID

from iotledger.adapters.mqtt.link import BrokerUnavailable, Publisher
from iotledger.adapters.mqtt.topics import Topics
from iotledger.projections.ports import Unreachable


class MqttSender:
    def __init__(self, publisher: Publisher, topics: Topics) -> None:
        self._publisher = publisher
        self._topics = topics

    async def to_device(self, device_id: UUID, payload: bytes) -> None:
        """`T/devices/{id}/commands`."""
        await self._publish(self._topics.commands(device_id), payload)

    async def to_fleet(self, payload: bytes) -> None:
        """`T`, where every device of the Lambda IoT Core protocol listens."""
        await self._publish(self._topics.base, payload)

    async def _publish(self, topic: str, payload: bytes) -> None:
        try:
            await self._publisher.publish(topic, payload)
        except BrokerUnavailable as error:
            raise Unreachable(str(error)) from error
