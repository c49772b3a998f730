"""The amqtt plugins that put `BrokerGate` in the embedded broker's path.

amqtt loads plugins by dotted path and fills each one's `Config` dataclass from
the broker's configuration; `EmbeddedBroker` passes the gate itself there.
Imported only by amqtt, when an embedded broker with `devices` auth starts.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from iotledger.adapters.embedded.gate import Act, BrokerGate

log = logging.getLogger(__name__)
PLUGINS = f"{__name__}.CredentialAuthPlugin", f"{__name__}.CredentialTopicPlugin"
_ACTS = {Action.PUBLISH: Act.PUBLISH, Action.SUBSCRIBE: Act.SUBSCRIBE}


class CredentialAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """CONNECT: only issued credentials and iotledger's own account."""

    @dataclass
    class Config:
        gate: Any = None

    async def authenticate(self, *, session: Session) -> bool:
        gate: BrokerGate = self.config.gate
        return await gate.admit(session.username, session.password)


class CredentialTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """PUBLISH and SUBSCRIBE: only what the client's access list names."""

    @dataclass
    class Config:
        gate: Any = None

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        if session is None or topic is None or action is None:
            return False
        gate: BrokerGate = self.config.gate
        act = _ACTS.get(action, Act.RECEIVE)
        return await gate.permits(session.username, session.password, act, topic)


async def sweep(broker: Any, gate: BrokerGate, every: float = 1.0) -> None:
    """Forever: disconnect each client whose secret was rotated or revoked since it connected."""
    while True:
        await asyncio.sleep(every)
        for session, handler in list(broker.sessions.values()):
            connected = session.transitions.is_connected()
            if connected and not await gate.admit(session.username, session.password):
                log.info("disconnecting %s: its credentials no longer hold", session.username)
                await handler.handle_connection_closed()
