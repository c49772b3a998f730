"""The credentials read model: one row per credential that works now, and the gateways.

What authenticates a device or a gateway (the embedded broker, REST with HTTP
Basic, Mosquitto's dynamic security) reads this model through the
`CredentialDirectory` port. Rotation replaces a row's hash, revocation removes
the row; the log keeps every secret's hash and when it was valid.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import msgspec
from eventsourcing.dispatch import singledispatchmethod

from iotledger.domain.credentials import CredentialKind
from iotledger.domain.devices import Device
from iotledger.domain.gateways import Gateway
from iotledger.projections.base import Projection, topics_of


class Credential(msgspec.Struct, frozen=True):
    username: str
    kind: CredentialKind
    subject_id: UUID
    secret_hash: str
    issued_at: datetime


class GatewaySummary(msgspec.Struct, frozen=True):
    id: UUID
    owner: UUID
    name: str
    username: str
    issued_at: datetime


class CredentialDirectory(Protocol):
    """Who a username is, and whether a password is its secret: the one port every
    authenticator of devices and gateways asks."""

    def find(self, username: str) -> Credential | None: ...

    def verify(self, username: str, password: str) -> Credential | None: ...


class CredentialRows(ABC):
    """What the credentials projection writes, inside one unit of work."""

    @abstractmethod
    def put(self, credential: Credential) -> None:
        """Add the credential, or replace the hash and time of the one with its username."""

    @abstractmethod
    def remove(self, username: str) -> None: ...

    @abstractmethod
    def add_gateway(self, gateway: GatewaySummary) -> None: ...

    @abstractmethod
    def remove_gateway(self, gateway_id: UUID) -> None: ...


class CredentialProjection(Projection[CredentialRows]):
    name = "credentials"
    topics = topics_of(
        Device.CredentialsIssued,
        Device.CredentialsRotated,
        Device.CredentialsRevoked,
        Gateway.Registered,
        Gateway.Revoked,
    )

    @singledispatchmethod
    def apply(self, event: Any, work: CredentialRows) -> None:
        """Events of other topics are not ours."""

    @apply.register
    def _(self, event: Device.CredentialsIssued, work: CredentialRows) -> None:
        """Also `CredentialsRotated`, its subclass: the new hash replaces the old."""
        device_id, at = event.originator_id, event.timestamp
        kind = CredentialKind.DEVICE
        work.put(Credential(event.username, kind, device_id, event.secret_hash, at))

    @apply.register
    def _(self, event: Device.CredentialsRevoked, work: CredentialRows) -> None:
        work.remove(event.username)

    @apply.register
    def _(self, event: Gateway.Registered, work: CredentialRows) -> None:
        gateway_id, username, at = event.originator_id, event.username, event.timestamp
        kind = CredentialKind.GATEWAY
        work.put(Credential(username, kind, gateway_id, event.secret_hash, at))
        work.add_gateway(GatewaySummary(gateway_id, event.owner, event.name, username, at))

    @apply.register
    def _(self, event: Gateway.Revoked, work: CredentialRows) -> None:
        work.remove(event.username)
        work.remove_gateway(event.originator_id)
