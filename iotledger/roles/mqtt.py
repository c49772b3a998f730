"""The `mqtt` role: the broker link, what devices send, and what is sent to them.

One place wires it, for `iotledger serve` and for tests alike: the link
(subscribed to everything devices send, and a member of the deployment's share
group that leaves it on stop unless it is the last: `mqtt_group`), the inbound
handler behind it, the dispatcher and the device checks (each in one process at
a time), the presence writer, and a log line of the counters every minute (the same
counts are Prometheus counters: `adapters.observability.metrics.MqttCounters`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from gmqtt.mqtt.constants import MQTTv50, MQTTv311

from iotledger.adapters.mqtt.directory import Presence, ledger_directory
from iotledger.adapters.mqtt.group import GroupMembership
from iotledger.adapters.mqtt.inbound import Inbound
from iotledger.adapters.mqtt.link import MqttLink
from iotledger.adapters.mqtt.names import share_group
from iotledger.adapters.mqtt.tls import tls_context
from iotledger.adapters.observability.metrics import MqttCounters
from iotledger.adapters.postgres.leadership import lead
from iotledger.bootstrap import Services
from iotledger.projections.device_checks import DeviceChecks
from iotledger.projections.dispatcher import Dispatcher
from iotledger.settings import MqttUrl, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    """How often each part works; tests make them short."""

    dispatch_every: float = 0.25
    presence_every: float = 1.0
    counters_every: float = 60.0
    reconnect_delay: float = 1.0
    check_interval: float | None = None  # None: IOTLEDGER_DEVICE_CHECK_INTERVAL


@dataclass
class MqttRole:
    link: MqttLink
    inbound: Inbound
    counters: Counter[str]


def link_for(
    settings: Settings,
    url: MqttUrl,
    client_id: str,
    embedded: bool,
    subscriptions: tuple[str, ...] = (),
    **kw: Any,
) -> MqttLink:
    """MQTT 5 with the deployment's shared subscriptions and a session that expires, for a
    real broker; 3.1.1 for the embedded one."""
    return MqttLink(
        url,
        client_id,
        subscriptions,
        version=MQTTv311 if embedded else MQTTv50,
        share_group=None if embedded else share_group(settings.mqtt_topic),
        session_expiry=settings.mqtt_session_expiry,
        tls=tls_context(settings),
        **kw,
    )


@contextlib.asynccontextmanager
async def mqtt_role(
    services: Services,
    url: MqttUrl,
    *,
    client_id: str,
    embedded: bool = False,
    timing: Timing = Timing(),
) -> AsyncIterator[MqttRole]:
    settings = services.settings
    topics = services.topics
    counters: Counter[str] = MqttCounters()
    link = link_for(
        settings,
        url,
        client_id,
        embedded,
        topics.subscriptions(),
        counters=counters,
        reconnect_delay=timing.reconnect_delay,
    )
    presence = Presence(services.dispatch.record_heard)
    inbound = Inbound(
        services.ledger,
        services.recording,
        directory=ledger_directory(services.ledger),
        presence=presence,
        topics=topics,
        counters=counters,
        max_payload=settings.max_body_bytes,
    )
    link.handler = inbound.handle_many
    dispatcher = Dispatcher(services.ledger, services.dispatch, link.publish, topics, counters)
    checks = DeviceChecks(
        services.ledger,
        services.devices,
        services.dispatch,
        publish=link.publish,
        topics=topics,
        counters=counters,
        misses=settings.device_check_misses,
    )
    check_every = timing.check_interval or settings.device_check_interval
    background: list[Coroutine[Any, Any, None]] = [  # each leader's connection named after it
        lead(
            services.conninfo("dispatcher"), "dispatcher", dispatcher.round, timing.dispatch_every
        ),
        lead(services.conninfo("device-checks"), "device-checks", checks.round, check_every),
        presence.run(timing.presence_every),
        log_counters(counters, timing.counters_every),
    ]
    group = link.share_group
    membership = None if group is None else GroupMembership(services.conninfo("mqtt-group"), group)
    await link.start()
    if membership is not None:
        await membership.join()
    tasks = [asyncio.create_task(work) for work in background]
    try:
        yield MqttRole(link, inbound, counters)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await link.stop(leave=membership is not None and await membership.depart())
        await presence.flush()


async def log_counters(counters: Counter[str], every: float) -> None:
    """One line a minute of what the adapter received, handled, dropped (by reason), sent."""
    last: dict[str, int] = {}
    while True:
        await asyncio.sleep(every)
        if dict(counters) != last:
            last = dict(counters)
            log.info("mqtt: %s", ", ".join(f"{k}={v}" for k, v in sorted(last.items())))
