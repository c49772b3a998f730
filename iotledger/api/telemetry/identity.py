"""Device Telemetry: a device's credentials, its claim, and the caller's gateways.

Credentials follow the device's tenancy (another user's device answers 404).
A gateway is its registrant's; the list never shows a password, which only
the answer to its registration carries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from iotledger.api.auth import Principal
from iotledger.api.deps import off_loop
from iotledger.api.identity import (
    DeviceCredentialsController,
    new_secret,
    revoke_device_credentials,
)
from iotledger.api.registry import access_of, cause, device_summary
from iotledger.api.settle import record
from iotledger.api.telemetry.wire import TelemetryDevice, telemetry_device
from iotledger.application.clock import now
from iotledger.application.identity import ClaimDevice, RegisterGateway, RevokeGateway
from iotledger.bootstrap import Services
from iotledger.domain.credentials import CredentialKind, secret_hash, username_of
from iotledger.domain.devices import DeviceAccess, Name
from iotledger.projections.credentials import CredentialProjection, GatewaySummary
from iotledger.projections.devices import DeviceProjection

SecretKey = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class Claim(msgspec.Struct):
    secret_key: SecretKey


class NewGateway(msgspec.Struct):
    name: Name


class RegisteredGateway(msgspec.Struct):
    id: UUID
    name: str
    username: str
    password: str
    issued_at: datetime


class TelemetryGateway(msgspec.Struct):
    id: UUID
    name: str
    username: str
    issued_at: datetime


def telemetry_gateway(gateway: GatewaySummary) -> TelemetryGateway:
    return TelemetryGateway(gateway.id, gateway.name, gateway.username, gateway.issued_at)


class TelemetryDeviceIdentityController(DeviceCredentialsController):
    path = "/api/v1/devices/{device_id:str}"
    tags = ["Device Telemetry: device identity"]

    def access(self, principal: Principal) -> DeviceAccess:
        return access_of(principal)

    @delete("/credentials")
    async def revoke_credentials(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> None:
        access, by = access_of(principal), cause(principal)
        await revoke_device_credentials(services, device_id, access, by)

    @post("/claim", status_code=200)
    async def claim_device(
        self,
        device_id: FromPath[UUID],
        data: JSONBody[Claim],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> TelemetryDevice:
        """The device's offered secret makes it the caller's (400 `CLAIM_REFUSED` if wrong
        or expired)."""
        claim = ClaimDevice(device_id, principal.user_id, secret_hash(data.secret_key), now())
        await record(services.watch, services.ledger.claim_device, claim, DeviceProjection)
        device = await device_summary(services.devices, device_id, access_of(principal))
        return telemetry_device(device)


class TelemetryGatewaysController(Controller):
    path = "/api/v1/gateways"
    tags = ["Device Telemetry: gateways"]

    @post("/", status_code=201)
    async def register_gateway(
        self,
        data: JSONBody[NewGateway],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> RegisteredGateway:
        password, at = new_secret(), now()
        command = RegisterGateway(uuid4(), principal.user_id, data.name, secret_hash(password), at)
        register = services.ledger.register_gateway
        await record(services.watch, register, command, CredentialProjection)
        await services.enforcer.issue(CredentialKind.GATEWAY, command.gateway_id, password)
        username = username_of(CredentialKind.GATEWAY, command.gateway_id)
        return RegisteredGateway(command.gateway_id, data.name, username, password, at)

    @get("/")
    async def list_gateways(
        self, services: NamedDependency[Services], principal: NamedDependency[Principal]
    ) -> list[TelemetryGateway]:
        gateways = await off_loop(services.credential_view.gateways_of, principal.user_id)
        return [telemetry_gateway(gateway) for gateway in gateways]

    @delete("/{gateway_id:str}")
    async def revoke_gateway(
        self,
        gateway_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> None:
        command = RevokeGateway(gateway_id, principal.user_id, now())
        revoke = services.ledger.revoke_gateway
        await record(services.watch, revoke, command, CredentialProjection)
        await services.enforcer.revoke(CredentialKind.GATEWAY, gateway_id)
