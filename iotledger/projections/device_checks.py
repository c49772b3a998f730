"""Device checks of the Lambda IoT Core protocol: is every device of the shared fleet there?

Every `IOTLEDGER_DEVICE_CHECK_INTERVAL` seconds (in one process at a time, see
`leadership`) each device of the shared fleet that is not disabled is sent a
`device_check_request` on `T`. Its answer (`device_check_response`) sets its
status wherever it is handled; here only counts whether it answered: a device
heard from (any message: answers, readings, discovery) since it was last asked
has answered. One that has not answered `misses` checks in a row becomes lost.
Private devices (Device Telemetry) are not checked: their status is their own
word (their status topic and will).

Who was asked when is kept in memory: a new leader starts counting from zero,
so a restart delays a verdict, never hastens one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from uuid import UUID

import msgspec

from iotledger.adapters.mqtt.link import BrokerUnavailable
from iotledger.adapters.mqtt.topics import Topics
from iotledger.adapters.postgres.views.devices import PostgresDeviceView
from iotledger.adapters.postgres.views.dispatch import PostgresDispatchView
from iotledger.application.clock import now
from iotledger.application.discovery import ReportDeviceStatus
from iotledger.application.ledger import Ledger
from iotledger.domain.devices import FLEET
from iotledger.domain.instants import lambda_time
from iotledger.domain.vocabulary import DeviceStatus
from iotledger.projections.devices import DeviceSummary

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[None]]
PAGE = 1000
CONCURRENT_PUBLISHES = 100
ANSWERING = frozenset({DeviceStatus.OK, DeviceStatus.PENDING})
"""The statuses a silent device loses."""


class CheckRequest(msgspec.Struct, tag_field="type", tag="device_check_request"):
    device_id: UUID
    requested_at: datetime


_encode = msgspec.json.Encoder().encode


class DeviceChecks:
    def __init__(
        self,
        ledger: Ledger,
        devices: PostgresDeviceView,
        presence: PostgresDispatchView,
        *,
        publish: Publish,
        topics: Topics,
        counters: Counter[str],
        misses: int,
    ) -> None:
        self._ledger = ledger
        self._devices = devices
        self._presence = presence
        self._publish = publish
        self._topics = topics
        self.counters = counters
        self.misses = misses
        self._asked: dict[UUID, datetime] = {}
        self._missed: dict[UUID, int] = {}

    async def round(self) -> None:
        """Judge last round's answers, then ask every device again."""
        at = now()
        fleet = await asyncio.to_thread(self._fleet)
        heard = await asyncio.to_thread(self._presence.last_heard, [d.id for d in fleet])
        for device in fleet:
            if self._missed_again(device.id, heard.get(device.id)):
                await self._lose(device, at)
        self._forget_all_but({d.id for d in fleet})
        await self._ask(fleet, at)

    def _fleet(self) -> list[DeviceSummary]:
        return [d for d in _pages(self._devices) if d.status != DeviceStatus.DISABLED]

    def _missed_again(self, device_id: UUID, heard: datetime | None) -> bool:
        """Count one more miss if it was asked and not heard from since; True at the limit."""
        asked = self._asked.get(device_id)
        if asked is None:
            return False
        if heard is not None and heard >= asked:
            self._missed[device_id] = 0
            return False
        self._missed[device_id] = self._missed.get(device_id, 0) + 1
        return self._missed[device_id] >= self.misses

    async def _lose(self, device: DeviceSummary, at: datetime) -> None:
        if device.status not in ANSWERING:
            return
        log.info("device %s missed %d checks: lost", device.id, self._missed[device.id])
        report = ReportDeviceStatus(device.id, DeviceStatus.LOST, "system", at, FLEET)
        await asyncio.to_thread(self._ledger.report_device_status, report)
        self.counters["checks.lost"] += 1

    async def _ask(self, fleet: list[DeviceSummary], at: datetime) -> None:
        for start in range(0, len(fleet), CONCURRENT_PUBLISHES):
            chunk = fleet[start : start + CONCURRENT_PUBLISHES]
            try:
                await asyncio.gather(*(self._request(device.id, at) for device in chunk))
            except BrokerUnavailable as error:
                log.info("device checks wait for the broker: %s", error)
                return

    async def _request(self, device_id: UUID, at: datetime) -> None:
        message = CheckRequest(device_id=device_id, requested_at=lambda_time(at))
        await self._publish(self._topics.base, _encode(message))
        self._asked[device_id] = at
        self.counters["checks.requested"] += 1

    def _forget_all_but(self, live: set[UUID]) -> None:
        for table in (self._asked, self._missed):
            for device_id in set(table) - live:
                del table[device_id]


def _pages(devices: PostgresDeviceView) -> Iterator[DeviceSummary]:
    offset = 0
    while page := devices.fleet(PAGE, offset):
        yield from page
        offset += len(page)
        if len(page) < PAGE:
            return
