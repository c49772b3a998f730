"""The event store on PostgreSQL: eventsourcing's recorders, tuned and typed.

Event payloads are msgspec JSON. Decoding is typed: each event class gets a
msgspec decoder built from its annotations, so UUIDs and datetimes come back as
themselves and a malformed stored event fails loudly instead of half-decoding.
"""

from __future__ import annotations

import functools
import math
import typing
from collections.abc import Callable
from typing import Any, ClassVar, cast
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from eventsourcing.utils import Environment, EnvType, resolve_topic
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from iotledger.adapters.postgres.connections import (
    IDLE_IN_TRANSACTION_TIMEOUT,
    Bounds,
    connection_options,
)
from iotledger.settings import DatabaseUrl

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


def _once(name: str) -> Any:
    """eventsourcing's method `name`, without the retry decorator around it."""
    return getattr(PostgresApplicationRecorder, name).__wrapped__


class FailFastRecorder(PostgresApplicationRecorder):
    """eventsourcing's recorder, failing at the first error instead of the tenth.

    eventsourcing retries a failed read or append ten times, 0.2 s apart: behind a
    locked table a request waited ten lock timeouts (measured: 12 s with a 0.5 s lock
    timeout). A timeout or a lost connection now answers at once (503 with Retry-After)
    and the client tries again; the pool checks a connection before handing it out.
    """

    insert_events = _once("insert_events")
    select_events = _once("select_events")
    select_notifications = _once("select_notifications")
    max_notification_id = _once("max_notification_id")


class BoundedPostgresFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory, whose connections carry iotledger's options.

    eventsourcing builds its pool's connection parameters itself from host, port, user,
    password and database, and knows neither a statement timeout nor TLS; the options
    (`iotledger.adapters.postgres.connections`: the bounds and the URL's libpq parameters) travel
    in the environment under `CONNECTION_OPTIONS` and join its parameters before the pool
    opens.
    """

    CONNECTION_OPTIONS = "POSTGRES_CONNECTION_OPTIONS"
    application_recorder_class = FailFastRecorder

    def __init__(self, env: Environment | EnvType) -> None:
        super().__init__(env)
        options = self.env.get(self.CONNECTION_OPTIONS)
        parameters = self.datastore.pool.kwargs
        if not isinstance(parameters, dict):
            raise TypeError("eventsourcing's pool has no dict of connection parameters")
        parameters.update(conninfo_to_dict(options or ""))


def eventsourcing_env(url: DatabaseUrl, pool_size: int, bounds: Bounds) -> dict[str, str]:
    """The eventsourcing settings for our PostgreSQL.

    Tables are never created on construction (`CREATE_TABLE=n`): `iotledger migrate`
    creates them once, so that processes never race on `CREATE OR REPLACE`.
    Its pool keeps one connection while idle and opens at most `pool_size`; a caller
    waits for one as long as a statement may run. Every statement is bounded
    (`bounds`); eventsourcing's own `LOCK TABLE` waits the lock timeout (whole seconds).
    """
    options = connection_options(url, "eventstore", bounds)
    return {
        "PERSISTENCE_MODULE": "iotledger.adapters.postgres.eventstore:BoundedPostgresFactory",
        "POSTGRES_DBNAME": url.dbname,
        "POSTGRES_HOST": url.host,
        "POSTGRES_PORT": str(url.port),
        "POSTGRES_USER": url.user,
        "POSTGRES_PASSWORD": url.password,
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": str(pool_size - 1),
        "POSTGRES_CONNECT_TIMEOUT": str(math.ceil(bounds.statement_timeout)),
        "POSTGRES_LOCK_TIMEOUT": str(math.ceil(bounds.lock_timeout)),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(int(IDLE_IN_TRANSACTION_TIMEOUT)),
        "POSTGRES_PRE_PING": "y",
        BoundedPostgresFactory.CONNECTION_OPTIONS: make_conninfo("", **options),
        "CREATE_TABLE": "n",
        "TRANSCODER_TOPIC": "iotledger.adapters.postgres.eventstore:MsgspecTranscoder",
        "MAPPER_TOPIC": "iotledger.adapters.postgres.eventstore:MsgspecMapper",
    }
