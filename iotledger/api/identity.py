"""What both dialects' credential endpoints share: the secret is made here, shown once.

The secret is 32 random bytes (`secrets.token_urlsafe`), made at the edge and
handed to the domain only as its hash. A write waits until the credentials
read model applied it, then tells the broker (`Services.enforcer`: with
`IOTLEDGER_MQTT_AUTH=dynsec` an issue the broker did not take answers 503), so
the credential works (or stops working) as soon as the answer arrives.

Issuing is the same request in both dialects, so it is one handler
(`DeviceCredentialsController`); each dialect's controller adds whose devices its
callers reach and its own answer to a revocation.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from uuid import UUID

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from iotledger.api.auth import Principal
from iotledger.api.registry import cause
from iotledger.api.settle import record
from iotledger.application.clock import now
from iotledger.application.devices import DeleteDevice
from iotledger.application.identity import IssueCredentials, RevokeCredentials
from iotledger.bootstrap import Services
from iotledger.domain.credentials import CredentialKind, secret_hash, username_of
from iotledger.domain.devices import DeviceAccess
from iotledger.projections.credentials import CredentialProjection
from iotledger.projections.devices import DeviceProjection


class IssuedCredentials(msgspec.Struct):
    device_id: UUID
    username: str
    password: str
    issued_at: datetime


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def issue_device_credentials(
    services: Services, device_id: UUID, access: DeviceAccess, by: str
) -> IssuedCredentials:
    """Issue, or rotate: the previous secret stops working."""
    password, at = new_secret(), now()
    command = IssueCredentials(device_id, access, secret_hash(password), by, at)
    await record(services.watch, services.ledger.issue_credentials, command, CredentialProjection)
    await services.enforcer.issue(CredentialKind.DEVICE, device_id, password)
    username = username_of(CredentialKind.DEVICE, device_id)
    return IssuedCredentials(device_id, username, password, at)


async def revoke_device_credentials(
    services: Services, device_id: UUID, access: DeviceAccess, by: str
) -> None:
    command = RevokeCredentials(device_id, access, by, now())
    revoke = services.ledger.revoke_credentials
    await record(services.watch, revoke, command, CredentialProjection)
    await services.enforcer.revoke(CredentialKind.DEVICE, device_id)


async def delete_device(services: Services, command: DeleteDevice) -> None:
    """Deleting a device revokes its credentials: the broker forgets them too."""
    await record(services.watch, services.ledger.delete_device, command, DeviceProjection)
    await services.enforcer.revoke(CredentialKind.DEVICE, command.device_id)


class DeviceCredentialsController(Controller):
    """`POST .../devices/{device_id}/credentials`, in either dialect's path and tags."""

    @post("/credentials", status_code=201)
    async def issue_credentials(
        self,
        device_id: FromPath[UUID],
        services: NamedDependency[Services],
        principal: NamedDependency[Principal],
    ) -> IssuedCredentials:
        """The password is shown only here; a second POST rotates (the old one stops)."""
        access, by = self.access(principal), cause(principal)
        return await issue_device_credentials(services, device_id, access, by)

    def access(self, principal: Principal) -> DeviceAccess:
        """Whose devices the caller reaches, by the dialect's rule."""
        raise NotImplementedError
