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


@functools.cache
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
    return msgspec.defstruct(f"{cls.__qualname__}State", fields)


@functools.cache
def _state_decoder(cls: type[Any]) -> Callable[[bytes], dict[str, Any]]:
    """A decoder for the stored state of one event class, built from its annotations."""
    struct = state_struct(cls)
    decoder = msgspec.json.Decoder(struct)
    names = struct.__struct_fields__

    def decode(data: bytes) -> dict[str, Any]:
        state = decoder.decode(data)
        return {name: getattr(state, name) for name in names}

    return decode


class MsgspecMapper(Mapper[UUID]):
    """Maps domain events to stored events with msgspec, decoding each class typed."""

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        if getattr(cls, "class_version", 1) > 1:
            return super().to_domain_event(stored_event)
        state = _state_decoder(cls)(stored_event.state)
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return cast(DomainEventProtocol[UUID], domain_event)


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
