"""The accounts iotledger keeps on the broker: devices, gateways and its own service.

A device's and a gateway's password is random and shown once; iotledger keeps
only its hash, so the broker learns it at issue time or never. The service
account's password is derived instead (HMAC-SHA256 of the base topic under
`IOTLEDGER_JWT_SECRET`), so that every process of a deployment can compute it
and connect, and nobody has to hand it around.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from enum import StrEnum
from uuid import UUID

import msgspec

from iotledger.settings import MqttUrl


class Kind(StrEnum):
    DEVICE = "device"
    GATEWAY = "gateway"
    SERVICE = "service"


class Account(msgspec.Struct, frozen=True):
    """An account that should exist on the broker; `password` only where it is known."""

    username: str
    kind: Kind
    subject_id: UUID | None = None  # the device or gateway; None for the service
    password: str | None = None

    def __repr__(self) -> str:
        shown = "None" if self.password is None else "'***'"
        return f"Account({self.username!r}, {self.kind.value}, password={shown})"


def device_account(device_id: UUID, password: str | None = None) -> Account:
    return Account(f"device-{device_id}", Kind.DEVICE, device_id, password)


def gateway_account(gateway_id: UUID, password: str | None = None) -> Account:
    return Account(f"gateway-{gateway_id}", Kind.GATEWAY, gateway_id, password)


def service_account(base_topic: str, secret: str) -> Account:
    """`iotledger-<base topic>`, with a password every process of the deployment derives."""
    message = f"iotledger mqtt service account:{base_topic}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    password = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return Account(f"iotledger-{base_topic}", Kind.SERVICE, None, password)


def service_url(admin: MqttUrl, service: Account) -> MqttUrl:
    """Where iotledger's own links connect: the admin's broker (TLS too), as the service account."""
    return msgspec.structs.replace(admin, username=service.username, password=service.password)
