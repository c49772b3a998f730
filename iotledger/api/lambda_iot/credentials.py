"""Lambda IoT Core: credentials of the shared fleet's devices (our extension).

Same body as the Device Telemetry dialect; a private device answers 404 here.
"""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from iotledger.api.auth import Principal
from iotledger.api.identity import (
    IssuedCredentials,
    issue_device_credentials,
    revoke_device_credentials,
)
from iotledger.api.lambda_iot.wire import Message
from iotledger.api.registry import cause
from iotledger.bootstrap import Services
from iotledger.domain.devices import FLEET


class LambdaCredentialsController(Controller):
    path = "/devices/{device_id:str}/credentials"
    tags = ["Lambda IoT Core: devices"]

    @post("/", status_code=201)
    async def issue_credentials(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> IssuedCredentials:
        """The password is shown only here; a second POST rotates (the old one stops)."""
        return await issue_device_credentials(services, device_id, FLEET, cause(principal))

    @delete("/", status_code=200)
    async def revoke_credentials(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Message:
        await revoke_device_credentials(services, device_id, FLEET, cause(principal))
        return Message(message="credentials revoked")
