"""Each kind of thing not there is its own error class, told apart by class, never by text.

The one mapping (`iotledger.api.errors`) answers every one of them 404 with its own
message; the MQTT adapter counts a drop by the class; a domain error's code is its
class's own, held once.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import pytest

from iotledger.api.errors import CODE_OF_STATUS, STATUS_OF, Answer, answer_to
from iotledger.api.settle import record
from iotledger.application.service import Written
from iotledger.domain.devices import ComponentKind
from iotledger.domain.errors import (
    ActorNotFound,
    CommandNotFound,
    DeviceNotFound,
    GatewayNotFound,
    NoCredentials,
    NotFound,
    ReadingNotFound,
    SensorNotFound,
    UserNotFound,
)
from iotledger.projections.commands import CommandProjection
from iotledger.projections.devices import DeviceProjection

KINDS = [
    DeviceNotFound,
    SensorNotFound,
    ActorNotFound,
    CommandNotFound,
    ReadingNotFound,
    GatewayNotFound,
    UserNotFound,
    NoCredentials,
]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_not_found_answers_404_with_its_own_message(kind: type[NotFound]) -> None:
    assert answer_to(kind()) == Answer(404, kind.message, "NOT_FOUND", None)
    assert kind.message != NotFound.message


def test_a_message_given_at_the_source_is_the_one_answered() -> None:
    answer = answer_to(ReadingNotFound("sensor reading not found"))
    assert answer == Answer(404, "sensor reading not found", "NOT_FOUND", None)


def test_a_sensor_and_an_actor_each_have_their_own_not_found() -> None:
    assert ComponentKind.SENSOR.not_found is SensorNotFound
    assert ComponentKind.ACTOR.not_found is ActorNotFound
    assert str(ComponentKind.SENSOR.not_found()) == "sensor not found"


def test_a_domain_error_answers_the_code_of_its_own_class() -> None:
    assert {status: error.code for error, status in STATUS_OF.items()}.items() <= (
        CODE_OF_STATUS.items()
    )


class Watch:
    """Records what a reply waited for."""

    def __init__(self) -> None:
        self.waits: list[tuple[int, tuple[str, ...]]] = []

    async def wait(self, position: int, *names: str) -> bool:
        self.waits.append((position, names))
        return True


def test_a_write_settles_on_the_projections_it_names_by_class() -> None:
    watch = Watch()
    written = Written(uuid4(), 42)
    watched: Any = watch
    result = asyncio.run(
        record(watched, lambda _: written, None, DeviceProjection, CommandProjection)
    )
    assert result is written
    assert watch.waits == [(42, ("devices", "commands"))]
