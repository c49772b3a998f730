"""The event store on PostgreSQL: eventsourcing's recorders, tuned and typed.

Event payloads are msgspec JSON. Decoding is typed: each event class gets a
msgspec decoder built from its annotations, so UUIDs and datetimes come back as
themselves and a malformed stored event fails loudly instead of half-decoding.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from typing import Any, ClassVar, cast
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import resolve_topic

from iotledger.adapters.settings import DatabaseUrl

_ENVELOPE = frozenset({"originator_id", "originator_version"})


class MsgspecTranscoder(Transcoder):
    """Untyped msgspec JSON; the mapper below decodes typed where it can."""

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()

    def encode(self, obj: Any) -> bytes:
        return self._encoder.encode(obj)

    def decode(self, data: bytes) -> Any:
        return msgspec.json.decode(data)


def state_struct(cls: type[Any]) -> type[msgspec.Struct]:
    """The stored state of one event class as a Struct, built from its annotations.

    Its fields are in the order eventsourcing's mapper writes them (the event's
    attributes less the envelope), so encoding an instance gives the same bytes.
    """
    hints = typing.get_type_hints(cls)
    fields = [
        (name, hint)
        for name, hint in hints.items()
        if name not in _ENVELOPE and typing.get_origin(hint) is not ClassVar
    ]
    # Untracked by the cycle collector: it holds plain data, and a replay makes millions.
    return msgspec.defstruct(f"{cls.__qualname__}State", fields, gc=False)


EventMaker = Callable[[UUID, int, bytes], DomainEventProtocol[UUID]]


@functools.cache
def _event_maker(topic: str) -> EventMaker | None:
    """How to make events of one topic from their stored state; None if they need upcasting.

    Built once per topic: replaying millions of readings spends most of its time here.
    """
    cls = resolve_topic(topic)
    if getattr(cls, "class_version", 1) > 1:
        return None
    decode = msgspec.json.Decoder(state_struct(cls)).decode
    asdict = msgspec.structs.asdict
    new = object.__new__

    def make(originator_id: UUID, originator_version: int, state: bytes) -> Any:
        attributes = asdict(decode(state))
        attributes["originator_id"] = originator_id
        attributes["originator_version"] = originator_version
        domain_event = new(cls)
        object.__setattr__(domain_event, "__dict__", attributes)
        return domain_event

    return make


class MsgspecMapper(Mapper[UUID]):
    """Maps domain events to stored events with msgspec, decoding each class typed."""

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        return self.event_of(
            cast(UUID, stored_event.originator_id),
            stored_event.originator_version,
            stored_event.topic,
            stored_event.state,
        )

    def event_of(
        self, originator_id: UUID, originator_version: int, topic: str, state: bytes
    ) -> DomainEventProtocol[UUID]:
        """The domain event of one stored row, without building a StoredEvent first."""
        make = _event_maker(topic)
        if make is None:
            stored = StoredEvent(originator_id, originator_version, topic, state)
            return super().to_domain_event(stored)
        return make(originator_id, originator_version, state)


def eventsourcing_env(url: DatabaseUrl, pool_size: int = 10) -> dict[str, str]:
    """The eventsourcing settings for our PostgreSQL.

    Tables are never created on construction (`CREATE_TABLE=n`): `iotledger migrate`
    creates them once, so that processes never race on `CREATE OR REPLACE`.
    Lock and idle-in-transaction timeouts are bounded: the defaults wait forever.
    """
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.dbname,
        "POSTGRES_HOST": url.host,
        "POSTGRES_PORT": str(url.port),
        "POSTGRES_USER": url.user,
        "POSTGRES_PASSWORD": url.password,
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_LOCK_TIMEOUT": "10",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "10",
        "POSTGRES_PRE_PING": "y",
        "CREATE_TABLE": "n",
        "TRANSCODER_TOPIC": "iotledger.adapters.eventstore:MsgspecTranscoder",
        "MAPPER_TOPIC": "iotledger.adapters.eventstore:MsgspecMapper",
    }
