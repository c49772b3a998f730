"""The event log as tests fill and read it: straight through the ledger, past the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from iotledger.application.devices import RegisterDevice
from iotledger.bootstrap import App
from iotledger.domain.devices import Device
from iotledger.domain.users import EmailIndex, User, UsernameIndex
from iotledger.domain.vocabulary import DeviceStatus
from tests.support.identity import unique


def event_count(services: App) -> int:
    """The position of the newest event in the log: how many were ever written."""
    return services.ledger.recorder.max_notification_id() or 0


def registered(services: App) -> uuid.UUID:
    """A device of the shared fleet, straight through the ledger."""
    device_id = uuid.uuid4()
    command = RegisterDevice(
        device_id, None, "Meter", DeviceStatus.OK, "user:test", datetime.now(UTC)
    )
    return services.ledger.register_device(command).id


def append_users(services: App, count: int, chunk: int = 500) -> None:
    """Many users, appended in large saves (fast; hashing is not the point here)."""
    now = datetime.now(UTC)
    for start in range(0, count, chunk):
        aggregates: list[Any] = []
        for _ in range(min(chunk, count - start)):
            name = unique()
            user = User(
                user_id=uuid4(),
                username=name,
                email=f"{name}@example.com",
                password_hash="x",
                registered_at=now,
            )
            aggregates += [
                user,
                UsernameIndex(username=name, user_id=user.id),
                EmailIndex(email=f"{name}@example.com", user_id=user.id),
            ]
        services.ledger.save(*aggregates)


def save_device(services: App, name: str, **fields: Any) -> tuple[UUID, int]:
    """A device saved as is, without the domain's check: its id and log position."""
    device = Device.register(
        device_id=uuid4(),
        owner=None,
        name=name,
        device_type=fields.get("device_type", "sensor"),
        description="",
        location="",
        status=DeviceStatus.OK,
        metadata=fields.get("metadata", {}),
        by="test",
        at=datetime.now(UTC),
    )
    services.ledger.save(device)
    return device.id, event_count(services)
