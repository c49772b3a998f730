"""Who may do what on the broker: the contract's access lists as dynsec roles.

Every kind of access is denied by default (`DEFAULT_ACCESS`); a role only
allows. Mosquitto checks a shared subscription against its whole filter,
`$share/<group>/<topic>` (a role allowing `T/#` does not allow
`$share/iotledger/T/#`), so the service role allows both forms. A device
subscribes to its own commands topic literally: a filter with a wildcard
(`T/devices/+/commands`) is refused, even though it would include its own.
Unsubscribing is allowed where subscribing is: a persistent session that
leaves a shared group must be able to unsubscribe.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import msgspec

from iotledger.adapters.mqtt.topics import Topics

SEND = "publishClientSend"
RECEIVE = "publishClientReceive"
SUBSCRIBE = "subscribeLiteral"
SUBSCRIBE_PATTERN = "subscribePattern"
UNSUBSCRIBE = "unsubscribeLiteral"
UNSUBSCRIBE_PATTERN = "unsubscribePattern"

DEFAULT_ACCESS = [
    {"acltype": kind, "allow": False} for kind in (SEND, RECEIVE, "subscribe", "unsubscribe")
]
"""The `setDefaultACLAccess` list: what no role allows is refused."""


class Acl(msgspec.Struct, frozen=True, order=True):
    """One entry of a role's access list, as the plugin lists it."""

    acltype: str
    topic: str
    allow: bool = True
    priority: int = 0


Acls = frozenset[Acl]


def _allow(acltype: str, topics: Iterable[str]) -> set[Acl]:
    return {Acl(acltype, topic) for topic in topics}


def _subscriber(filters: Iterable[str], *, literal: bool) -> set[Acl]:
    """Subscribe to, receive on and unsubscribe from these filters."""
    filters = tuple(filters)
    subscribe, unsubscribe = (
        (SUBSCRIBE, UNSUBSCRIBE) if literal else (SUBSCRIBE_PATTERN, UNSUBSCRIBE_PATTERN)
    )
    return _allow(subscribe, filters) | _allow(unsubscribe, filters) | _allow(RECEIVE, filters)


def device_acls(topics: Topics, device_id: UUID) -> Acls:
    """Publish its readings, status, acks and claim; receive its own commands only."""
    sends = (
        topics.telemetry(device_id),
        topics.status(device_id),
        f"{topics.commands(device_id)}/+/ack",
        topics.claim(device_id),
    )
    return frozenset(_allow(SEND, sends) | _subscriber([topics.commands(device_id)], literal=True))


def gateway_acls(topics: Topics) -> Acls:
    """The Lambda IoT Core protocol: publish on `T` and `T/discovery`, listen on `T`."""
    sends = (topics.base, topics.discovery)
    return frozenset(_allow(SEND, sends) | _subscriber([topics.base], literal=True))


def service_acls(topics: Topics) -> Acls:
    """iotledger itself: everything under `T`, in shared subscriptions too."""
    everything = f"{topics.base}/#"
    shared = f"$share/+/{everything}"
    return frozenset(
        _allow(SEND, [everything])
        | _subscriber([everything], literal=False)
        | _allow(SUBSCRIBE_PATTERN, [shared])
        | _allow(UNSUBSCRIBE_PATTERN, [shared])
    )
