"""The embedded broker's two replaced steps (`adapters.embedded.plugins.GatedBroker`),
pinned against amqtt: a message's access check takes no turn of the event loop, and
one broadcast task passes on every message waiting in the queue.

Both are what kept 1,000 readings a second from 200 devices from reaching iotledger
(`iotledger simulate`): amqtt asked its topic plugins in gathered tasks and passed on one
message per task, each costing turns of a loop busy with 200 connections.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from typing import Any
from uuid import uuid4

from amqtt.contexts import Action
from amqtt.session import Session

from iotledger.adapters.embedded.gate import SERVICE_USERNAME, BrokerGate, service_password
from iotledger.adapters.embedded.plugins import BROADCASTS_AT_ONCE, PLUGINS, GatedBroker
from iotledger.adapters.mqtt.topics import Topics
from iotledger.adapters.security.credentials import CachedCredentials

SECRET = "turns-" + "x" * 40
TOPICS = Topics("turns")


def finishes_without_a_turn(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The coroutine's value, if it ends at its first step (never waits for the loop)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise AssertionError("it waited for a turn of the event loop")


def session(username: str, password: str) -> Session:
    made = Session()
    made.username, made.password, made.client_id = username, password, username
    return made


def broker() -> GatedBroker:
    """Configured as `EmbeddedBroker` configures it (not started: nothing listens)."""
    gate = BrokerGate(CachedCredentials(lambda _: None), TOPICS, service_password(SECRET))
    listeners = {"default": {"type": "tcp", "bind": "127.0.0.1:0"}}
    made = GatedBroker({"listeners": listeners, "plugins": {p: {"gate": gate} for p in PLUGINS}})
    made.gate = gate
    return made


def test_what_a_client_may_do_is_asked_without_a_turn_of_the_loop() -> None:
    async def check() -> None:
        gated = broker()
        ours = session(SERVICE_USERNAME, service_password(SECRET))
        device = session(f"device-{uuid4()}", "wrong")
        topic = TOPICS.telemetry(uuid4())
        assert finishes_without_a_turn(gated._topic_filtering(ours, topic, Action.RECEIVE))
        assert finishes_without_a_turn(gated._topic_filtering(device, topic, Action.RECEIVE))
        wrong = session(SERVICE_USERNAME, "wrong")
        assert not finishes_without_a_turn(gated._topic_filtering(wrong, topic, Action.RECEIVE))

    asyncio.run(check())


def test_one_broadcast_task_passes_on_every_waiting_message() -> None:
    async def check() -> None:
        gated = broker()
        for n in range(BROADCASTS_AT_ONCE + 5):
            gated._broadcast_queue.put_nowait({"session": None, "topic": f"t/{n}", "data": b""})
        await gated._run_broadcast(deque())
        assert gated._broadcast_queue.qsize() == 5  # the rest, in the next task

    asyncio.run(check())
