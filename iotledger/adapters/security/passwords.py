"""Password hashing: argon2id with the RFC 9106 low-memory profile."""

from __future__ import annotations

from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY


class PasswordHasher:
    def __init__(self) -> None:
        self._argon2 = Argon2Hasher.from_parameters(RFC_9106_LOW_MEMORY)
        # Verified against when the user does not exist, so that a wrong username
        # costs exactly as long as a wrong password.
        self._decoy = self._argon2.hash("iotledger-decoy-password")

    def hash(self, password: str) -> str:
        return self._argon2.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash or self._decoy, password) and bool(
                password_hash
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)
