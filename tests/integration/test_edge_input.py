"""Input at the edge of what JSON, UTF-8 and integers allow is the client's mistake: a 400
in the dialect's own error body, and nothing stored.

The intake lane's answers to the same bodies are held equal to Litestar's in
`tests/integration/test_intake.py`; here they go through the application `serve` runs.
"""

from __future__ import annotations

import base64
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from litestar.testing import TestClient

from iotledger.api.bodies import MAX_JSON_DEPTH
from iotledger.api.pagination import MAX_PAGE
from iotledger.bootstrap import App
from tests.support.ledger import event_count
from tests.support.telemetry import new_telemetry_device

Client = TestClient[Any]
BIGINT_MAX = 2**63 - 1


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def deep_text(depth: int) -> bytes:
    """A JSON document `depth` levels deep, built as text (no encoder nests that far)."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def with_payload(payload: bytes) -> bytes:
    return b'{"telemetry_type": "environment", "payload": %s}' % payload


def is_telemetry_400(response: Any) -> bool:
    body = response.json()
    return (
        response.status_code == 400
        and body["success"] is False
        and body["error"]["code"] == "VALIDATION_ERROR"
    )


def is_lambda_400(response: Any) -> bool:
    return response.status_code == 400 and set(response.json()) == {"error"}


@pytest.fixture
def device(client: Client, headers: dict[str, str]) -> str:
    return str(new_telemetry_device(client, headers)["id"])


def post(client: Client, path: str, content: bytes, headers: dict[str, str]) -> Any:
    return client.post(
        path, content=content, headers={**headers, "content-type": "application/json"}
    )


TOO_DEEP = [deep_text(10_000), deep_text(MAX_JSON_DEPTH)]
BAD_UTF8 = [b'{"telemetry_type": "\xff", "payload": {}}', b'{"name": "\xed\xa0\x80"}']


@pytest.mark.parametrize("payload", TOO_DEEP)
def test_a_telemetry_post_nested_too_deep_answers_400_and_stores_nothing(
    client: Client, services: App, headers: dict[str, str], device: str, payload: str
) -> None:
    before = event_count(services)
    response = post(client, f"/api/v1/devices/{device}/telemetry", with_payload(payload), headers)
    assert is_telemetry_400(response), response.text
    assert "nested" in response.json()["error"]["message"]
    assert event_count(services) == before


def test_a_payload_just_within_the_depth_bound_is_stored(
    client: Client, headers: dict[str, str], device: str
) -> None:
    body = {"telemetry_type": "environment", "payload": nested(MAX_JSON_DEPTH - 1)}
    response = client.post(f"/api/v1/devices/{device}/telemetry", json=body, headers=headers)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "content", [b'{"name": "n", "metadata": %s}' % deep_text(10_000), *BAD_UTF8]
)
def test_device_metadata_too_deep_or_not_utf8_answers_400_and_stores_nothing(
    client: Client, services: App, headers: dict[str, str], content: bytes
) -> None:
    before = event_count(services)
    response = post(client, "/api/v1/devices", content, headers)
    assert is_telemetry_400(response), response.text
    assert event_count(services) == before


@pytest.mark.parametrize(
    "content",
    [
        b'{"username": "u-%s", "password": "secret-1", "email": %s}'
        % (uuid4().hex.encode(), deep_text(10_000)),
        b'{"username": "\xc3\x28abc", "password": "secret-1"}',
        b"\xff\xfe{}",
    ],
)
def test_register_too_deep_or_not_utf8_answers_400_in_each_dialect(
    client: Client, services: App, content: bytes
) -> None:
    before = event_count(services)
    assert is_lambda_400(post(client, "/register", content, {}))
    assert is_telemetry_400(post(client, "/api/v1/auth/register", content, {}))
    assert event_count(services) == before


def cursor_of(*items: Any) -> str:
    raw = msgspec.json.encode(list(items))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


OUT_OF_RANGE = [BIGINT_MAX + 1, -(2**63) - 1, 10**30, 2**64]


@pytest.mark.parametrize("number", OUT_OF_RANGE)
def test_a_cursor_holding_an_out_of_range_integer_answers_400_on_every_list(
    client: Client, headers: dict[str, str], device: str, number: int
) -> None:
    lists = {
        "/api/v1/devices": [cursor_of("devices", number)],
        f"/api/v1/devices/{device}/commands": [cursor_of("commands", number)],
        f"/api/v1/devices/{device}/telemetry": [
            cursor_of("telemetry", number, 1),
            cursor_of("telemetry", 1, number),
            cursor_of("telemetry", BIGINT_MAX, 1),
        ],
    }
    for path, cursors in lists.items():
        for cursor in cursors:
            response = client.get(path, params={"cursor": cursor}, headers=headers)
            assert is_telemetry_400(response), (path, cursor, response.text)


@pytest.mark.parametrize("path", ["/devices", "/sensors", "/actors", "/sensor-readings"])
@pytest.mark.parametrize(
    "query",
    [
        {"page": str(BIGINT_MAX), "limit": "10"},
        {"page": str(BIGINT_MAX // 10), "limit": "1000"},
        {"page": "1" + "0" * 30, "limit": "1"},
        {"page": "0", "limit": "1" + "0" * 30},
    ],
)
def test_a_page_or_limit_out_of_range_answers_400_on_the_lambda_lists(
    client: Client, headers: dict[str, str], path: str, query: dict[str, str]
) -> None:
    response = client.get(path, params=query, headers=headers)
    assert is_lambda_400(response), response.text


def test_the_last_page_that_fits_answers_an_empty_list(
    client: Client, headers: dict[str, str]
) -> None:
    response = client.get("/devices", params={"page": MAX_PAGE, "limit": 1000}, headers=headers)
    assert response.status_code == 200
    assert response.json() == []
