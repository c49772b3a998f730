"""The `CredentialDirectory` of every process: the read model, remembered briefly.

A device posts readings many times a minute, and the embedded broker checks
every publish: asking PostgreSQL each time would cost more than the reading.
A found credential is remembered for `ttl` seconds (2 by default), so a rotated
or revoked secret stops working within that plus the projection's lag (well
under the 5 seconds promised). Unknown usernames are not remembered, and a
password that does not match what is remembered is checked again against the
model: a credential issued or rotated a moment ago works at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from iotledger.domain.credentials import same_hash, secret_hash
from iotledger.projections.credentials import Credential

Find = Callable[[str], Credential | None]
_MAX_REMEMBERED = 100_000


class CachedCredentials:
    """Implements `CredentialDirectory` over `find` (the PostgreSQL view's)."""

    def __init__(
        self, find: Find, ttl: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._find = find
        self._ttl = ttl
        self._clock = clock
        self._remembered: dict[str, tuple[float, Credential]] = {}

    def find(self, username: str) -> Credential | None:
        return self.remembered(username) or self._fetch(username)

    def verify(self, username: str, password: str) -> Credential | None:
        """The credential whose secret `password` is; None for anything else. A password
        that does not match what is remembered is checked against the model again: it may
        be the secret that has just replaced it."""
        return matching(self.remembered(username), password) or matching(
            self._fetch(username), password
        )

    async def verify_async(self, username: str, password: str) -> Credential | None:
        """`verify` from the event loop: a remembered match without a thread hop."""
        remembered = matching(self.remembered(username), password)
        if remembered is not None:
            return remembered
        return matching(await asyncio.to_thread(self._fetch, username), password)

    def _fetch(self, username: str) -> Credential | None:
        found = self._find(username)
        if found is None:
            self._remembered.pop(username, None)
            return None
        if len(self._remembered) >= _MAX_REMEMBERED:
            self._remembered.clear()
        self._remembered[username] = (self._clock() + self._ttl, found)
        return found

    def remembered(self, username: str) -> Credential | None:
        entry = self._remembered.get(username)
        if entry is None or entry[0] < self._clock():
            return None
        return entry[1]


def matching(credential: Credential | None, password: str) -> Credential | None:
    if credential is None or not same_hash(credential.secret_hash, secret_hash(password)):
        return None
    return credential
