"""Streamed exports in both dialects: every row, oldest first, as the lists render them."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.support.identity import register_and_login
from tests.support.lambda_iot import new_component, new_device
from tests.support.telemetry import at, is_telemetry_error, listed, new_telemetry_device, post

Client = TestClient[Any]


@pytest.fixture
def device(client: Client, headers: dict[str, str]) -> str:
    return str(new_telemetry_device(client, headers)["id"])


def export(client: Client, headers: dict[str, str], path: str) -> Any:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response


def ndjson(response: Any) -> list[Any]:
    return [json.loads(line) for line in response.text.splitlines()]


def csv_rows(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


def test_an_export_holds_every_reading_oldest_first_as_the_list_shows_it(
    client: Client, headers: dict[str, str], device: str
) -> None:
    for n in (3, 1, 2, 5, 4):  # out of device-time order
        post(client, headers, device, recorded_at=at(n), payload={"n": n})
    response = export(client, headers, f"/api/v1/devices/{device}/telemetry/export")
    assert response.headers["content-type"].startswith("application/x-ndjson")
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="telemetry-{device}.ndjson"'
    assert ndjson(response) == list(reversed(listed(client, headers, device)))
    assert [r["payload"]["n"] for r in ndjson(response)] == [1, 2, 3, 4, 5]


def test_an_export_keeps_to_the_range_and_the_type(
    client: Client, headers: dict[str, str], device: str
) -> None:
    for n in range(6):
        post(client, headers, device, recorded_at=at(n), telemetry_type=f"t{n % 2}")
    query = f"?from={at(1)}&to={at(5)}&telemetry_type=t1"
    response = export(client, headers, f"/api/v1/devices/{device}/telemetry/export{query}")
    assert [r["recorded_at"] for r in ndjson(response)] == [at(1), at(3)]


def test_a_csv_export_has_a_header_and_the_payload_as_escaped_json(
    client: Client, headers: dict[str, str], device: str
) -> None:
    awkward = {"note": 'a "quoted", comma\nand a new line', "v": 1.5, "nested": {"k": [1, None]}}
    created = post(client, headers, device, payload=awkward)
    response = export(client, headers, f"/api/v1/devices/{device}/telemetry/export?format=csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.startswith("id,telemetry_type,payload,recorded_at\r\n")
    (row,) = csv_rows(response)
    assert json.loads(row.pop("payload")) == awkward
    assert row == {k: created[k] for k in ("id", "telemetry_type", "recorded_at")}


def test_the_history_export_lists_the_history_of_the_device(
    client: Client, headers: dict[str, str], device: str
) -> None:
    for name in ("one", "two"):
        client.patch(f"/api/v1/devices/{device}", json={"name": name}, headers=headers)
    history = client.get(f"/api/v1/devices/{device}/history", headers=headers).json()
    response = export(client, headers, f"/api/v1/devices/{device}/history/export?format=ndjson")
    assert ndjson(response) == history
    assert [entry["version"] for entry in history] == [1, 2, 3]


def test_another_users_device_answers_404_on_every_export(
    client: Client, headers: dict[str, str], device: str
) -> None:
    stranger = register_and_login(client)
    for path in ("telemetry/export", "history/export", "telemetry/aggregate?field=n&bucket=1h"):
        response = client.get(f"/api/v1/devices/{device}/{path}", headers=stranger)
        assert is_telemetry_error(response, 404), path


@pytest.mark.parametrize(
    "query",
    ["?format=xml", "?from=yesterday", "?to=2025-01-01T00:00:00", "?telemetry_type=a%00b"],
)
def test_a_bad_export_parameter_answers_400_in_the_telemetry_body(
    client: Client, headers: dict[str, str], device: str, query: str
) -> None:
    response = client.get(f"/api/v1/devices/{device}/telemetry/export{query}", headers=headers)
    assert is_telemetry_error(response, 400)


def test_an_export_needs_a_bearer_token(client: Client, device: str) -> None:
    response = client.get(f"/api/v1/devices/{device}/telemetry/export")
    assert is_telemetry_error(response, 401)


@pytest.fixture
def sensor(client: Client, headers: dict[str, str]) -> str:
    return new_component(client, headers, "sensors", new_device(client, headers))


def test_a_sensor_export_lists_its_readings_by_value_time_in_both_formats(
    client: Client, headers: dict[str, str], sensor: str
) -> None:
    for n in (2, 1, 3):
        body = {"sensor_id": sensor, "value": n, "value_at": at(n)}
        assert client.post("/sensor-readings", json=body, headers=headers).status_code == 201
    listed = client.get(f"/sensor-readings?sensor_id={sensor}", headers=headers).json()
    by_time = sorted(listed, key=lambda r: r["value_at"])
    lines = ndjson(export(client, headers, f"/sensor-readings/export?sensor_id={sensor}"))
    assert lines == by_time
    response = export(client, headers, f"/sensor-readings/export?sensor_id={sensor}&format=csv")
    expected = [{k: str(v) for k, v in r.items()} for r in by_time]
    assert [{**row, "value": str(float(row["value"]))} for row in csv_rows(response)] == [
        {**row, "value": str(float(row["value"]))} for row in expected
    ]
    assert f'filename="sensor-readings-{sensor}.csv"' in response.headers["content-disposition"]


@pytest.mark.parametrize("query", ["", "?sensor_id=nope", "?sensor_id={sensor}&format=xml"])
def test_a_bad_sensor_export_answers_400_in_the_lambda_body(
    client: Client, headers: dict[str, str], sensor: str, query: str
) -> None:
    response = client.get(f"/sensor-readings/export{query.format(sensor=sensor)}", headers=headers)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


def test_an_unknown_sensor_export_answers_404(
    client: Client, headers: dict[str, str], device: str
) -> None:
    response = client.get(f"/sensor-readings/export?sensor_id={device}", headers=headers)
    assert (response.status_code, response.json()) == (404, {"error": "sensor not found"})
