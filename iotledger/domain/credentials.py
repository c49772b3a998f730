"""Device and gateway credentials: who may speak for a device, and a claim's secret.

A credential is a username and a random secret. The secret is made at the edge
(at least 32 random bytes), shown once, and recorded only as its SHA-256: for a
random secret of that size a fast hash is enough, and it lets every broker and
API process check a password in microseconds. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from uuid import UUID

from iotledger.domain.errors import InvalidInput


class CredentialKind(StrEnum):
    DEVICE = "device"
    GATEWAY = "gateway"


class ClaimRefused(InvalidInput):
    """A claim with a wrong or expired secret, or on a device that offers none."""

    code = "CLAIM_REFUSED"


def username_of(kind: CredentialKind, subject_id: UUID) -> str:
    """Stable per device or gateway, and free of `:` so HTTP Basic can carry it."""
    return f"{kind}-{subject_id}"


def secret_hash(secret: str) -> str:
    """What is recorded of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    """Constant-time: how long it takes says nothing of how much matched."""
    return hmac.compare_digest(a.encode(), b.encode())
