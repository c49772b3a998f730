"""Gateways: one MQTT client that speaks the Lambda IoT Core protocol for many devices.

A gateway belongs to the user who registered it and holds one credential from
its registration until it is revoked; a revoked gateway stays in the log.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from iotledger.domain.credentials import CredentialKind, username_of
from iotledger.domain.devices import checked_name
from iotledger.domain.errors import GatewayNotFound


class Gateway(Aggregate):
    owner: UUID
    name: str
    username: str
    revoked: bool

    def __init__(self) -> None:
        """The blank that `Registered` fills in."""
        self.revoked = False

    class Registered(Aggregate.Created):
        """Registered with its credential (only the secret's hash is here)."""

        owner: UUID
        name: str
        username: str
        secret_hash: str
        by: str

        def apply(self, gateway: Gateway) -> None:
            gateway.owner = self.owner
            gateway.name = self.name
            gateway.username = self.username

    class Revoked(Aggregate.Event):
        username: str
        by: str

        def apply(self, gateway: Gateway) -> None:
            gateway.revoked = True

    @classmethod
    def register(
        cls, gateway_id: UUID, *, owner: UUID, name: str, secret_hash: str, by: str, at: datetime
    ) -> Gateway:
        return cls._create(
            cls.Registered,
            id=gateway_id,
            owner=owner,
            name=checked_name(name),
            username=username_of(CredentialKind.GATEWAY, gateway_id),
            secret_hash=secret_hash,
            by=by,
            timestamp=at,
        )

    def revoke(self, by: str, at: datetime) -> None:
        if self.revoked:
            raise GatewayNotFound()
        self.trigger_event(self.Revoked, username=self.username, by=by, timestamp=at)
