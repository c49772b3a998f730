"""amqtt's side of the embedded broker: `BrokerGate` in its path, and its broadcast.

amqtt loads plugins by dotted path and fills each one's `Config` dataclass from
the broker's configuration; `EmbeddedBroker` passes the gate itself there, for
CONNECT. What a client may publish, subscribe to and receive, `GatedBroker` asks the
gate itself (see there why). Imported only when an embedded broker starts: amqtt
takes ~0.3 s to import and is unused with an external broker.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from iotledger.adapters.embedded.gate import Act, BrokerGate

log = logging.getLogger(__name__)
PLUGINS = (f"{__name__}.CredentialAuthPlugin",)
_ACTS = {Action.PUBLISH: Act.PUBLISH, Action.SUBSCRIBE: Act.SUBSCRIBE}


class CredentialAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """CONNECT: only issued credentials and iotledger's own account."""

    @dataclass
    class Config:
        gate: Any = None

    async def authenticate(self, *, session: Session) -> bool:
        gate: BrokerGate = self.config.gate
        return await gate.admit(session.username, session.password)


BROADCASTS_AT_ONCE = 100
"""Messages the broker passes on in one go, when they wait in its queue."""


class GatedBroker(Broker):  # type: ignore[misc]
    """amqtt's broker (0.12), with two of its steps replaced, each calling amqtt's own
    code or our gate: under a thousand readings a second from 200 devices
    (`iotledger simulate`), amqtt's queue of messages to pass on grew without end while
    the event loop had time to spare (docs/performance.md).

    - amqtt asks its topic plugins in tasks it creates and gathers, so every message it
      passes on waited for a turn of the event loop; this asks `gate` in line.
    - amqtt passes on one message per task it creates and waits for; this passes on
      every waiting message (up to `BROADCASTS_AT_ONCE`) in that task.

    tests/integration/test_embedded_broker_turns.py pins both steps against amqtt;
    tests/integration/test_embedded_broker_auth.py runs every rule through it.
    """

    gate: BrokerGate | None = None
    """What a client may do; None: anything (anonymous access)."""

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        if self.gate is None:
            return True
        act = _ACTS.get(action, Act.RECEIVE)
        return await self.gate.permits(session.username, session.password, act, topic)

    async def _run_broadcast(self, running_tasks: Any) -> None:
        await super()._run_broadcast(running_tasks)
        for _ in range(BROADCASTS_AT_ONCE - 1):
            if self._broadcast_queue.empty():
                return
            await super()._run_broadcast(running_tasks)


async def sweep(broker: Any, gate: BrokerGate, every: float = 1.0) -> None:
    """Forever: disconnect each client whose secret was rotated or revoked since it connected."""
    while True:
        await asyncio.sleep(every)
        for session, handler in list(broker.sessions.values()):
            connected = session.transitions.is_connected()
            if connected and not await gate.admit(session.username, session.password):
                log.info("disconnecting %s: its credentials no longer hold", session.username)
                await handler.handle_connection_closed()
