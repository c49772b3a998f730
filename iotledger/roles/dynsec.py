"""`IOTLEDGER_MQTT_AUTH=dynsec` wired into a process that talks to the broker.

Before any link of ours connects: the admin's control connection, then
`BrokerAccounts.prepare()` (deny by default, the shared roles, the service
client every link connects as). Then the API's enforcer is the broker's (what
`dynsec_accounts` yields, for `api.app.create_app`), and the reconciliation
policy runs under a leadership lock (one process of the deployment at a time),
reading the credentials model once it has caught up with the log's head at
that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from iotledger.adapters.mqtt.dynsec.accounts import Account
from iotledger.adapters.mqtt.dynsec.control import DynsecControl, DynsecUnavailable
from iotledger.adapters.mqtt.dynsec.enforcer import DynsecEnforcer, ReconcilePolicy, account_of
from iotledger.adapters.mqtt.dynsec.reconciler import BrokerAccounts
from iotledger.adapters.mqtt.tls import tls_context
from iotledger.adapters.postgres.leadership import lead
from iotledger.bootstrap import App
from iotledger.domain.errors import Unavailable
from iotledger.projections.credentials import CredentialProjection
from iotledger.settings import SettingsError

log = logging.getLogger(__name__)

NO_ADMIN = "IOTLEDGER_MQTT_AUTH: dynsec needs IOTLEDGER_MQTT_URL naming the Mosquitto admin"
ROUND_EVERY = 1.0  # how soon a change of the credentials model is reconciled


@contextlib.asynccontextmanager
async def dynsec_accounts(app: App, *, every: float = 30.0) -> AsyncIterator[DynsecEnforcer]:
    """Prepared and enforcing for as long as the process runs: the enforcer that tells
    the broker of each credential the API issues or revokes."""
    admin = app.settings.mqtt_url
    if admin is None:
        raise SettingsError(NO_ADMIN)
    control = DynsecControl(admin, tls=tls_context(app.settings))
    accounts = BrokerAccounts(control, app.topics, app.dynsec_service)
    try:
        await control.start()
        await accounts.prepare()
    except DynsecUnavailable as e:
        await control.stop()
        raise SettingsError(f"IOTLEDGER_MQTT_URL: cannot manage dynamic security: {e}") from e
    log.info("IOTLEDGER_MQTT_AUTH=dynsec: managing %s's clients and roles", admin.redacted())
    policy = task_of(app, accounts, every)
    try:
        yield DynsecEnforcer(accounts)
    finally:
        policy.cancel()
        await asyncio.gather(policy, return_exceptions=True)
        await control.stop()


def task_of(app: App, accounts: BrokerAccounts, every: float) -> asyncio.Task[None]:
    app.watch.start()  # the policy waits on it, in a process without the API too
    policy = ReconcilePolicy(
        accounts,
        lambda: caught_up_accounts(app),
        lambda: asyncio.to_thread(app.views.credentials.fingerprint),
        every=every,
    )
    work = lead(app.conninfo("leader"), "dynsec-reconciler", policy.round, ROUND_EVERY)
    return asyncio.create_task(work)


async def caught_up_accounts(app: App) -> list[Account]:
    """Every working credential as an account, from the model caught up with the log's
    head as it is now (an older model could miss an account issued since: deleted)."""
    if not await app.watch.wait(await app.log_head.get(), CredentialProjection.name):
        raise Unavailable("the credentials read model has not caught up with the log")
    credentials = await asyncio.to_thread(app.views.credentials.every)
    return [account_of(c.kind, c.subject_id) for c in credentials]
