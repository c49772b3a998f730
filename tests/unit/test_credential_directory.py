"""The credential directory's memory: fast for a known secret, never in the way of a new
one, and never longer than its time to live for an old one."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from iotledger.adapters.security.credentials import CachedCredentials
from iotledger.domain.credentials import CredentialKind, secret_hash
from iotledger.projections.credentials import Credential


class Table:
    """What the read model holds, and how often it was asked."""

    def __init__(self) -> None:
        self.rows: dict[str, Credential] = {}
        self.asked = 0

    def find(self, username: str) -> Credential | None:
        self.asked += 1
        return self.rows.get(username)

    def put(self, username: str, secret: str) -> None:
        now = datetime.now(UTC)
        kind = CredentialKind.DEVICE
        self.rows[username] = Credential(username, kind, uuid4(), secret_hash(secret), now)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_known_secret_is_verified_from_memory_until_its_time_is_up() -> None:
    table, clock = Table(), Clock()
    directory = CachedCredentials(table.find, ttl=2.0, clock=clock)
    table.put("device-a", "old")
    assert directory.verify("device-a", "old") is not None
    assert directory.verify("device-a", "old") is not None
    assert table.asked == 1
    del table.rows["device-a"]  # revoked
    assert directory.verify("device-a", "old") is not None  # within its time to live
    clock.now = 2.5
    assert directory.verify("device-a", "old") is None


def test_a_rotated_secret_works_at_once_and_wrong_ones_never() -> None:
    table, clock = Table(), Clock()
    directory = CachedCredentials(table.find, ttl=2.0, clock=clock)
    table.put("device-a", "old")
    assert directory.verify("device-a", "old") is not None
    table.put("device-a", "new")
    assert directory.verify("device-a", "new") is not None
    assert directory.verify("device-a", "old") is None
    assert directory.verify("device-a", "guess") is None
    assert directory.verify("device-b", "old") is None
