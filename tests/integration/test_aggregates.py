"""Time-bucket aggregates in both dialects, checked against buckets computed here."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from tests.support.lambda_iot import new_component, new_device
from tests.support.telemetry import is_telemetry_error, new_telemetry_device, post

Client = TestClient[Any]
T0 = datetime(2025, 10, 25, 20, 0, tzinfo=UTC)  # Berlin falls back on the 26th, at 01:00 UTC
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def aggregate(client: Client, headers: dict[str, str], device: str, query: str) -> Any:
    response = client.get(f"/api/v1/devices/{device}/telemetry/aggregate?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def bucket_of(moment: datetime, bucket: str, zone: ZoneInfo) -> datetime:
    """Where PostgreSQL's `date_trunc` in the zone (or `date_bin` from the epoch) puts it."""
    local = moment.astimezone(zone)
    if bucket == "1w":
        monday = local.date() - timedelta(days=local.weekday())
        return datetime(monday.year, monday.month, monday.day, tzinfo=zone)
    if bucket == "1d":
        return datetime(local.year, local.month, local.day, tzinfo=zone)
    if bucket == "6h":
        return datetime(local.year, local.month, local.day, local.hour // 6 * 6, tzinfo=zone)
    if bucket == "1h":
        return local.replace(minute=0, second=0, microsecond=0)
    if bucket == "1m":
        return local.replace(second=0, microsecond=0)
    return EPOCH + (moment - EPOCH) // timedelta(minutes=15) * timedelta(minutes=15)


def expected(
    readings: list[tuple[datetime, Any]],
    bucket: str,
    zone: ZoneInfo,
    since: datetime,
    until: datetime,
) -> list[Any]:
    groups: dict[datetime, list[tuple[datetime, float]]] = defaultdict(list)
    for at, value in readings:
        if isinstance(value, float) and since <= at < until:
            start = bucket_of(at, bucket, zone)
            groups[start.astimezone(UTC)].append((at, value))
    return [
        {
            "bucket_start": start,
            "count": len(values),
            "min": min(v for _, v in values),
            "max": max(v for _, v in values),
            "avg": statistics.fmean(v for _, v in values),
            "first": min(values, key=lambda p: p[0])[1],
            "last": max(values, key=lambda p: p[0])[1],
        }
        for start, values in sorted(groups.items())
    ]


readings_strategy = st.lists(
    st.tuples(
        st.integers(0, 3 * 24 * 3600 * 10).map(lambda s: T0 + timedelta(seconds=s / 10)),
        st.one_of(
            st.floats(-1000, 1000, allow_nan=False).map(lambda x: round(x, 3)),
            st.just("warm"),
            st.none(),
        ),
    ),
    max_size=12,
    unique_by=lambda r: r[0],  # equal device times leave first and last to the log order
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    readings=readings_strategy,
    bucket=st.sampled_from(["1m", "15m", "1h", "6h", "1d", "1w"]),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata"]),
    ends=st.lists(st.integers(-3600, 3 * 24 * 3600 + 3600), min_size=2, max_size=2).map(sorted),
)
def test_buckets_hold_the_count_min_max_avg_first_and_last_of_the_numbers(
    client: Client,
    headers: dict[str, str],
    readings: list[tuple[datetime, Any]],
    bucket: str,
    tz: str,
    ends: list[int],
) -> None:
    since, until = (T0 + timedelta(seconds=end) for end in ends)
    device = new_telemetry_device(client, headers)["id"]
    for at, value in readings:
        payload = {"env": {"t": value}} if value is not None else {"other": 1}
        post(client, headers, device, recorded_at=stamp(at), payload=payload)
    window = f"from={stamp(since)}&to={stamp(until)}"
    found = aggregate(client, headers, device, f"field=env.t&bucket={bucket}&tz={tz}&{window}")
    want = expected(readings, bucket, ZoneInfo(tz), since, until)
    for row in found:
        start = datetime.fromisoformat(row["bucket_start"])
        assert start.utcoffset() == start.astimezone(ZoneInfo(tz)).utcoffset()
        row["bucket_start"] = start.astimezone(UTC)
    assert found == [{**w, "avg": pytest.approx(w["avg"])} for w in want]


def test_a_day_bucket_follows_berlin_midnight_across_a_daylight_saving_change(
    client: Client, headers: dict[str, str]
) -> None:
    device = new_telemetry_device(client, headers)["id"]
    spring = ["2025-03-29T23:30:00Z", "2025-03-30T21:59:00Z", "2025-03-30T22:00:00Z"]
    for n, at in enumerate(spring):
        post(client, headers, device, recorded_at=at, payload={"v": n})
    query = "field=v&bucket=1d&tz=Europe/Berlin&from=2025-03-29T00:00:00Z"
    found = aggregate(client, headers, device, query)
    assert [(b["bucket_start"], b["count"]) for b in found] == [
        ("2025-03-30T00:00:00+01:00", 2),  # 23 hours long
        ("2025-03-31T00:00:00+02:00", 1),
    ]
    week = aggregate(client, headers, device, "field=v&bucket=1w&tz=Europe/Berlin")
    assert [(b["bucket_start"], b["count"]) for b in week] == [
        ("2025-03-24T00:00:00+01:00", 2),
        ("2025-03-31T00:00:00+02:00", 1),
    ]
    utc = aggregate(client, headers, device, "field=v&bucket=1d")
    assert [b["bucket_start"] for b in utc] == ["2025-03-29T00:00:00Z", "2025-03-30T00:00:00Z"]


def test_the_hour_repeated_by_falling_back_is_two_buckets(
    client: Client, headers: dict[str, str]
) -> None:
    device = new_telemetry_device(client, headers)["id"]
    for at in ("2025-10-26T00:30:00Z", "2025-10-26T01:30:00Z"):  # 02:30 local, twice
        post(client, headers, device, recorded_at=at, payload={"v": 1})
    found = aggregate(client, headers, device, "field=v&bucket=1h&tz=Europe/Berlin")
    starts = [b["bucket_start"] for b in found]
    assert starts == ["2025-10-26T02:00:00+02:00", "2025-10-26T02:00:00+01:00"]


@pytest.mark.parametrize(
    "query",
    [
        "bucket=1h",
        "field=v&bucket=2h",
        "field=v",
        "field=v&bucket=1h&tz=Mars/Olympus_Mons",
        "field=a..b&bucket=1h",
        "field=v&bucket=1h&from=tomorrow",
    ],
)
def test_a_bad_aggregate_parameter_answers_400_in_the_telemetry_body(
    client: Client, headers: dict[str, str], query: str
) -> None:
    device = new_telemetry_device(client, headers)["id"]
    response = client.get(f"/api/v1/devices/{device}/telemetry/aggregate?{query}", headers=headers)
    assert is_telemetry_error(response, 400), response.text


def test_a_sensor_aggregate_is_of_its_values(client: Client, headers: dict[str, str]) -> None:
    sensor = new_component(client, headers, "sensors", new_device(client, headers))
    for minute, value in ((1, 3.0), (2, 1.0), (61, 5.0)):
        at = stamp(T0 + timedelta(minutes=minute))
        body = {"sensor_id": sensor, "value": value, "value_at": at}
        assert client.post("/sensor-readings", json=body, headers=headers).status_code == 201
    response = client.get(
        f"/sensor-readings/aggregate?sensor_id={sensor}&bucket=1h", headers=headers
    )
    assert response.json() == [
        {
            "bucket_start": "2025-10-25T20:00:00Z",
            "count": 2,
            "min": 1.0,
            "max": 3.0,
            "avg": 2.0,
            "first": 3.0,
            "last": 1.0,
        },
        {
            "bucket_start": "2025-10-25T21:00:00Z",
            "count": 1,
            "min": 5.0,
            "max": 5.0,
            "avg": 5.0,
            "first": 5.0,
            "last": 5.0,
        },
    ]


@pytest.mark.parametrize(
    "query",
    ["bucket=1h", "sensor_id={sensor}&bucket=3d", "sensor_id={sensor}&bucket=1h&tz=Nowhere"],
)
def test_a_bad_sensor_aggregate_answers_400_in_the_lambda_body(
    client: Client, headers: dict[str, str], query: str
) -> None:
    sensor = new_component(client, headers, "sensors", new_device(client, headers))
    response = client.get(
        f"/sensor-readings/aggregate?{query.format(sensor=sensor)}", headers=headers
    )
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


def test_a_corrected_or_deleted_sensor_reading_changes_its_buckets(
    client: Client, headers: dict[str, str]
) -> None:
    sensor = new_component(client, headers, "sensors", new_device(client, headers))
    ids = []
    for minute, value in ((1, 3.0), (2, 1.0), (3, 2.0)):
        body = {
            "sensor_id": sensor,
            "value": value,
            "value_at": stamp(T0 + timedelta(minutes=minute)),
        }
        ids.append(client.post("/sensor-readings", json=body, headers=headers).json()["id"])
    moved = {"value": 7, "value_at": stamp(T0 + timedelta(hours=2))}
    assert client.put(f"/sensor-readings/{ids[0]}", json=moved, headers=headers).status_code == 200
    assert client.delete(f"/sensor-readings/{ids[1]}", headers=headers).status_code == 200
    path = f"/sensor-readings/aggregate?sensor_id={sensor}&bucket=1h"
    found = client.get(path, headers=headers).json()
    assert [(b["bucket_start"], b["count"], b["max"]) for b in found] == [
        ("2025-10-25T20:00:00Z", 1, 2.0),
        ("2025-10-25T22:00:00Z", 1, 7.0),
    ]
