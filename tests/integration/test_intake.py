"""The intake lane: which telemetry posts it takes, and that it answers them as Litestar does.

Both roads call the endpoint's one function (`post_telemetry`); the lane's own part is to
take the common form, read the body and the caller as Litestar's handler has them read
(the same functions, in the same order), and answer in the dialect's body. Each request
goes twice: once to the application `serve` runs (the lane in front of Litestar), once to
the Litestar application alone. A spy between the lane and Litestar shows which of the
two answered; the answers must be the same, and what the lane does not take must reach
Litestar untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from iotledger.api.app import create_litestar
from iotledger.api.intake import IntakeLane
from iotledger.api.telemetry.telemetry import TelemetryIntake
from iotledger.bootstrap import App
from tests.support.identity import register_and_login
from tests.support.ledger import event_count
from tests.support.telemetry import new_telemetry_device

Client = TestClient[Any]
READING = {
    "telemetry_type": "environment",
    "payload": {"temperature": 22.5},
    "recorded_at": "2025-08-22T12:34:56Z",
}


class Spy:
    """The Litestar application, noting each request that reached it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.reached: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.reached.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def spy(services: App) -> Spy:
    return Spy(create_litestar(services))


@pytest.fixture(scope="module")
def lane(services: App, spy: Spy) -> Iterator[Client]:
    with TestClient(IntakeLane(spy, services, TelemetryIntake.of(services))) as client:
        yield client


@pytest.fixture(scope="module")
def framework(services: App) -> Iterator[Client]:
    with TestClient(create_litestar(services)) as client:
        yield client


@pytest.fixture(scope="module")
def device(lane: Client, headers: dict[str, str]) -> str:
    return str(new_telemetry_device(lane, headers)["id"])


def answer(response: Any) -> tuple[int, str, Any]:
    return response.status_code, response.headers["content-type"], response.json()


def both(
    lane: Client, framework: Client, spy: Spy, path: str, content: bytes, head: dict[str, str]
) -> tuple[tuple[int, str, Any], tuple[int, str, Any]]:
    """The lane's answer (which Litestar must not have seen) and Litestar's, to one post."""
    head = {"content-type": "application/json", **head}
    before = len(spy.reached)
    by_lane = answer(lane.post(path, content=content, headers=head))
    assert len(spy.reached) == before, "the lane passed the post on to Litestar"
    return by_lane, answer(framework.post(path, content=content, headers=head))


NOT_JSON = [  # refused before the token is read
    b"not json",
    b'{"telemetry_type": "environment", "payload": {"t": 1}',
    b'{"telemetry_type": "environment", "payload": %s}' % (b"[" * 10_000 + b"]" * 10_000),
    b'{"telemetry_type": "environment", "payload": %s}' % (b'{"a":' * 40 + b"1" + b"}" * 40),
    b'{"telemetry_type": "environment", "payload": {"t": "\xff"}}',
    b'{"telemetry_type": "environment", "payload": {"t": 1e400}}',
]
BAD_BODIES = [
    b"",
    *NOT_JSON,
    b"[]",
    b"null",
    b'{"telemetry_type": "environment"}',
    b'{"payload": {"t": 1}}',
    b'{"telemetry_type": "", "payload": {"t": 1}}',
    b'{"telemetry_type": 7, "payload": {"t": 1}}',
    b'{"telemetry_type": "environment", "payload": [1, 2]}',
    b'{"telemetry_type": "environment", "payload": "hot"}',
    b'{"telemetry_type": "environment", "payload": {"t": 1}, "recorded_at": "yesterday"}',
    b'{"telemetry_type": "environment", "payload": {"t": 1}, "recorded_at": "2025-08-22T12:00"}',
    b'{"telemetry_type": "environment", "payload": {"note": "a\\u0000b"}}',
    b'{"telemetry_type": "environment", "payload": {"t": 1}, "id": ""}',
    b"[null]",
    b"[{}]",
    b'[{"telemetry_type": "t", "payload": {}}, {"telemetry_type": "t", "payload": [1]}]',
    b'[{"telemetry_type": "t", "payload": {}}, {"telemetry_type": "", "payload": {}}]',
    b'[{"telemetry_type": "t", "payload": {}},'
    b' {"telemetry_type": "t", "payload": {"a": "\\u0000"}}]',
    b'[{"telemetry_type": "t", "payload": {}, "recorded_at": "noon"}]',
    msgspec.json.encode([READING] * 1001),
]


@pytest.mark.parametrize("content", BAD_BODIES)
@pytest.mark.parametrize("signed_in", [True, False])
def test_a_bad_post_is_answered_alike_and_stores_nothing(
    lane: Client,
    framework: Client,
    spy: Spy,
    services: App,
    headers: dict[str, str],
    device: str,
    content: bytes,
    signed_in: bool,
) -> None:
    before = event_count(services)
    path = f"/api/v1/devices/{device}/telemetry"
    by_lane, by_framework = both(lane, framework, spy, path, content, headers if signed_in else {})
    assert by_lane == by_framework
    assert by_lane[0] == (400 if signed_in or content in NOT_JSON else 401)
    assert by_lane[2]["success"] is False
    assert event_count(services) == before


def test_unknown_and_foreign_devices_answer_404_alike(
    lane: Client, framework: Client, spy: Spy, headers: dict[str, str], device: str
) -> None:
    stranger = register_and_login(lane)
    content = msgspec.json.encode(READING)
    for path, head in (
        (f"/api/v1/devices/{device}/telemetry", stranger),
        (f"/api/v1/devices/{uuid4()}/telemetry", headers),
        (f"/api/v1/devices/{device}/telemetry", {"Authorization": "Bearer forged"}),
    ):
        by_lane, by_framework = both(lane, framework, spy, path, content, head)
        assert by_lane == by_framework
        assert by_lane[0] in (401, 404)


def test_a_reading_is_answered_alike_by_both_and_stored_once(
    lane: Client, framework: Client, spy: Spy, headers: dict[str, str], device: str
) -> None:
    path = f"/api/v1/devices/{device}/telemetry/"
    content = msgspec.json.encode({**READING, "recorded_at": "2025-08-22T12:34:57.5+02:00"})
    by_lane, by_framework = both(lane, framework, spy, path, content, headers)
    assert by_lane[:2] == (201, "application/json")
    assert by_lane == by_framework  # the same reading: Litestar's post was a redelivery
    listed = lane.get(f"/api/v1/devices/{device}/telemetry?limit=100", headers=headers).json()
    assert [r["id"] for r in listed].count(by_lane[2]["id"]) == 1
    assert by_lane[2]["recorded_at"] == "2025-08-22T10:34:57.500000Z"


def test_a_batch_is_answered_alike_by_both_and_stored_once(
    lane: Client, framework: Client, spy: Spy, headers: dict[str, str], device: str
) -> None:
    path = f"/api/v1/devices/{device}/telemetry"
    batch = [{**READING, "id": f"batch-{n}", "payload": {"n": n}} for n in range(3)]
    by_lane, by_framework = both(lane, framework, spy, path, msgspec.json.encode(batch), headers)
    assert by_lane[:2] == (201, "application/json")
    assert by_lane == by_framework  # the same readings: Litestar's post was a redelivery
    assert [r["payload"] for r in by_lane[2]] == [{"n": n} for n in range(3)]


def test_what_the_lane_does_not_take_reaches_litestar(
    lane: Client, spy: Spy, headers: dict[str, str], device: str, services: App
) -> None:
    chunked = lane.post(
        f"/api/v1/devices/{device}/telemetry",
        content=iter([msgspec.json.encode({**READING, "recorded_at": None})]),
        headers={**headers, "content-type": "application/json"},
    )
    assert chunked.status_code == 201, chunked.text
    too_big = b'{"telemetry_type": "t", "payload": {"x": "%s"}}' % (
        b"y" * services.settings.max_body_bytes
    )
    oversized = lane.post(f"/api/v1/devices/{device}/telemetry", content=too_big, headers=headers)
    assert oversized.status_code == 413
    assert oversized.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    not_canonical = lane.post(
        f"/api/v1/devices/{device.replace('-', '')}/telemetry", json=READING, headers=headers
    )
    assert not_canonical.status_code == 201  # Litestar reads a UUID without its dashes too
    assert spy.reached[-3:] == [f"POST /api/v1/devices/{d}/telemetry" for d in (device,) * 2] + [
        f"POST /api/v1/devices/{device.replace('-', '')}/telemetry"
    ]


# Integers within 64 bits: past them the two decoders name a wrong top-level type
# differently (`float` against `int`) in an error that is the same otherwise. Floats of
# sensor size: the second post is answered from the stored reading, and PostgreSQL's
# jsonb gives 8e56 back as the integer it equals.
integers = st.integers(min_value=-(2**63), max_value=2**64 - 1)
floats = st.floats(min_value=-1e15, max_value=1e15)
json_values = st.recursive(
    st.none() | st.booleans() | integers | floats | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
body = (
    st.fixed_dictionaries(
        {},
        optional={
            "telemetry_type": st.sampled_from(["environment", "", "x" * 101]) | json_values,
            "payload": json_values,
            "recorded_at": st.sampled_from(["2025-01-02T03:04:05Z", "2025-01-02"]) | json_values,
            "id": st.text(max_size=3) | integers | json_values,
        },
    )
    | json_values
)
bodies = body | st.lists(body, max_size=3)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_any_body_is_answered_alike(
    lane: Client,
    framework: Client,
    spy: Spy,
    headers: dict[str, str],
    device: str,
    body: Any,
) -> None:
    path = f"/api/v1/devices/{device}/telemetry"
    by_lane, by_framework = both(lane, framework, spy, path, msgspec.json.encode(body), headers)
    if by_lane[0] == 201:  # readings without a device time: two readings, each "now"
        for sent, lanes in zip(*_each(body, by_lane[2], by_framework[2]), strict=True):
            if sent.get("recorded_at") is None:
                for created in lanes:
                    del created["id"], created["recorded_at"]
    assert by_lane == by_framework


def _each(body: Any, *answers: Any) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """The readings of a body (one, or a batch) and the answers to each of them."""
    if isinstance(body, list):
        return body, list(zip(*answers, strict=True))
    return [body], [answers]
