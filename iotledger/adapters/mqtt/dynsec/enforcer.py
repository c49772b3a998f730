"""`IOTLEDGER_MQTT_AUTH=dynsec` at work: the `Enforcer` the API tells, and the policy
that keeps the broker in step with the log.

The enforcer acts at once, after the credential's event is appended. An issue
the broker could not be told about answers 503 (its event stays; the
reconciliation reports the account missing until it is issued again). A
revocation that could not reach the broker still stands in the log: it is
logged, and the next reconciliation deletes the client.

The policy reconciles at start, every `every` seconds, and within a round
(a second) of any change of the credentials read model (its `fingerprint`),
in one process at a time (`adapters.postgres.leadership.lead`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from uuid import UUID

from iotledger.adapters.mqtt.dynsec.accounts import Account, device_account, gateway_account
from iotledger.adapters.mqtt.dynsec.control import DynsecError, DynsecUnavailable
from iotledger.adapters.mqtt.dynsec.reconciler import BrokerAccounts, DesiredAccounts
from iotledger.adapters.observability.metrics import MQTT_ACCOUNTS_MISSING
from iotledger.domain.credentials import CredentialKind
from iotledger.domain.errors import Unavailable

log = logging.getLogger(__name__)

NOT_TOLD = (
    "the credentials are recorded but the broker could not be told; issue them again"
    " (a second POST rotates)"
)


def account_of(kind: CredentialKind, subject_id: UUID) -> Account:
    if kind == CredentialKind.GATEWAY:
        return gateway_account(subject_id)
    return device_account(subject_id)


class DynsecEnforcer:
    def __init__(self, accounts: BrokerAccounts) -> None:
        self.accounts = accounts

    async def issue(self, kind: CredentialKind, subject_id: UUID, password: str) -> None:
        try:
            await self.accounts.issue(account_of(kind, subject_id), password)
        except (DynsecUnavailable, DynsecError) as e:
            log.warning("dynsec: could not issue %s-%s: %s", kind, subject_id, e)
            raise DynsecUnavailable(NOT_TOLD) from e

    async def revoke(self, kind: CredentialKind, subject_id: UUID) -> None:
        try:
            await self.accounts.revoke(account_of(kind, subject_id))
        except (DynsecUnavailable, DynsecError) as e:
            log.warning(
                "dynsec: could not revoke %s-%s now (%s); the next reconciliation will",
                kind,
                subject_id,
                e,
            )


class ReconcilePolicy:
    """One `round` a second (under `lead`): reconcile when due or when the model changed."""

    def __init__(
        self,
        accounts: BrokerAccounts,
        desired: DesiredAccounts,
        fingerprint: Callable[[], Awaitable[object]],
        *,
        every: float = 30.0,
        retry: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.accounts = accounts
        self.desired = desired
        self.fingerprint = fingerprint
        self.every = every
        self.retry = retry
        self.clock = clock
        self._seen: object = None
        self._due = 0.0

    async def round(self) -> None:
        seen = await self.fingerprint()
        if seen == self._seen and self.clock() < self._due:
            return
        self._seen = seen  # read before: a change while reconciling brings another round
        try:
            done = await self.accounts.reconcile(self.desired)
        except Unavailable as e:  # the broker, or a model that lags the log
            log.warning("dynsec reconciliation postponed %.0fs: %s", self.retry, e)
            self._due = self.clock() + self.retry
            return
        MQTT_ACCOUNTS_MISSING.set(len(done.missing))
        self._due = self.clock() + self.every
