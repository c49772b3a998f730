"""Commands about who may speak for a device: credentials, gateways and claims.

Secrets arrive already hashed (the edge makes them and shows them once); the
domain decides who may issue, rotate, revoke and claim, under the tenancy rule
of `DeviceAccess`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import msgspec

from iotledger.application.devices import DeviceService
from iotledger.application.service import Written
from iotledger.domain.devices import DeviceAccess, caused_by_user
from iotledger.domain.errors import GatewayNotFound
from iotledger.domain.gateways import Gateway

CHANGED = "device changed concurrently"


class IssueCredentials(msgspec.Struct, frozen=True):
    """Issue a device's credentials, or rotate them if it has some."""

    device_id: UUID
    access: DeviceAccess
    secret_hash: str
    by: str
    at: datetime


class RevokeCredentials(msgspec.Struct, frozen=True):
    device_id: UUID
    access: DeviceAccess
    by: str
    at: datetime


class RegisterGateway(msgspec.Struct, frozen=True):
    gateway_id: UUID
    owner: UUID
    name: str
    secret_hash: str
    at: datetime


class RevokeGateway(msgspec.Struct, frozen=True):
    gateway_id: UUID
    owner: UUID
    at: datetime


class OfferClaim(msgspec.Struct, frozen=True):
    """A device (signed in as itself) offers itself to whoever shows the secret in time."""

    device_id: UUID
    secret_hash: str
    duration: timedelta
    by: str
    at: datetime


class ClaimDevice(msgspec.Struct, frozen=True):
    device_id: UUID
    user_id: UUID
    secret_hash: str
    at: datetime


class IdentityService(DeviceService):
    def issue_credentials(self, cmd: IssueCredentials) -> Written:
        device = self.device(cmd.device_id, cmd.access)
        device.issue_credentials(cmd.secret_hash, cmd.by, cmd.at)
        return Written(device.id, self.append(device, conflict=CHANGED))

    def revoke_credentials(self, cmd: RevokeCredentials) -> Written:
        device = self.device(cmd.device_id, cmd.access)
        device.revoke_credentials(cmd.by, cmd.at)
        return Written(device.id, self.append(device, conflict=CHANGED))

    def register_gateway(self, cmd: RegisterGateway) -> Written:
        gateway = Gateway.register(
            cmd.gateway_id,
            owner=cmd.owner,
            name=cmd.name,
            secret_hash=cmd.secret_hash,
            by=caused_by_user(cmd.owner),
            at=cmd.at,
        )
        return Written(gateway.id, self.append(gateway, conflict="gateway already exists"))

    def revoke_gateway(self, cmd: RevokeGateway) -> Written:
        """Only its owner may revoke a gateway; to anyone else it does not exist."""
        gateway = self.load(Gateway, cmd.gateway_id, GatewayNotFound)
        if gateway.owner != cmd.owner:
            raise GatewayNotFound()
        gateway.revoke(caused_by_user(cmd.owner), cmd.at)
        return Written(gateway.id, self.append(gateway, conflict="gateway changed concurrently"))

    def offer_claim(self, cmd: OfferClaim) -> Written:
        device = self.device(cmd.device_id, DeviceAccess(device_id=cmd.device_id))
        device.offer_claim(cmd.secret_hash, cmd.duration, cmd.by, cmd.at)
        return Written(device.id, self.append(device, conflict=CHANGED))

    def claim_device(self, cmd: ClaimDevice) -> Written:
        """The device moves into the user's tenancy; another user's device is NotFound."""
        device = self.device(cmd.device_id, DeviceAccess(user_id=cmd.user_id))
        device.claim(cmd.user_id, cmd.secret_hash, caused_by_user(cmd.user_id), cmd.at)
        return Written(device.id, self.append(device, conflict=CHANGED))
