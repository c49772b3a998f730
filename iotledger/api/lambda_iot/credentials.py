"""Lambda IoT Core: credentials of the shared fleet's devices (our extension).

Same body as the Device Telemetry dialect; a private device answers 404 here.
"""

from __future__ import annotations

from uuid import UUID

from litestar import delete
from litestar.di import NamedDependency
from litestar.params import FromPath

from iotledger.api.auth import Principal
from iotledger.api.identity import DeviceCredentialsController, revoke_device_credentials
from iotledger.api.lambda_iot.wire import Message
from iotledger.api.registry import cause
from iotledger.bootstrap import Services
from iotledger.domain.devices import FLEET, DeviceAccess


class LambdaCredentialsController(DeviceCredentialsController):
    path = "/devices/{device_id:str}"
    tags = ["Lambda IoT Core: devices"]

    def access(self, principal: Principal) -> DeviceAccess:
        return FLEET

    @delete("/credentials", status_code=200)
    async def revoke_credentials(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> Message:
        await revoke_device_credentials(services, device_id, FLEET, cause(principal))
        return Message(message="credentials revoked")
