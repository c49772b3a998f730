"""What both dialects' credential endpoints share: the secret is made here, shown once.

The secret is 32 random bytes (`secrets.token_urlsafe`), made at the edge and
handed to the domain only as its hash. A write waits until the credentials
read model applied it, then tells the broker (the `Enforcer`: with
`IOTLEDGER_MQTT_AUTH=dynsec` an issue the broker did not take answers 503), so
the credential works (or stops working) as soon as the answer arrives.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import msgspec

from iotledger.adapters.mqtt.auth import Enforcer
from iotledger.adapters.postgres.watch import ProjectionWatch
from iotledger.api.deps import off_loop
from iotledger.api.registry import now, record
from iotledger.application.devices import DeleteDevice
from iotledger.application.identity import IssueCredentials, RevokeCredentials
from iotledger.application.ledger import Ledger
from iotledger.application.service import Written
from iotledger.domain.credentials import CredentialKind, secret_hash, username_of
from iotledger.domain.devices import DeviceAccess
from iotledger.projections.credentials import CredentialProjection

C = TypeVar("C")


class IssuedCredentials(msgspec.Struct):
    device_id: UUID
    username: str
    password: str
    issued_at: datetime


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Identities:
    """What issuing and revoking credentials take, in both dialects (the dependency
    `identities`): the enforcer is the one of the process (`api.app.create_app`)."""

    ledger: Ledger
    watch: ProjectionWatch
    enforcer: Enforcer


async def record_identity(
    watch: ProjectionWatch, write: Callable[[C], Written], command: C
) -> Written:
    """Write, then wait until the credentials read model shows it."""
    written = await off_loop(write, command)
    await watch.wait(written.position, CredentialProjection.name)
    return written


async def issue_device_credentials(
    identities: Identities, device_id: UUID, access: DeviceAccess, by: str
) -> IssuedCredentials:
    """Issue, or rotate: the previous secret stops working."""
    password, at = new_secret(), now()
    command = IssueCredentials(device_id, access, secret_hash(password), by, at)
    await record_identity(identities.watch, identities.ledger.issue_credentials, command)
    await identities.enforcer.issue(CredentialKind.DEVICE, device_id, password)
    username = username_of(CredentialKind.DEVICE, device_id)
    return IssuedCredentials(device_id, username, password, at)


async def revoke_device_credentials(
    identities: Identities, device_id: UUID, access: DeviceAccess, by: str
) -> None:
    command = RevokeCredentials(device_id, access, by, now())
    await record_identity(identities.watch, identities.ledger.revoke_credentials, command)
    await identities.enforcer.revoke(CredentialKind.DEVICE, device_id)


async def delete_device(identities: Identities, command: DeleteDevice) -> None:
    """Deleting a device revokes its credentials: the broker forgets them too."""
    await record(identities.watch, identities.ledger.delete_device, command)
    await identities.enforcer.revoke(CredentialKind.DEVICE, command.device_id)
