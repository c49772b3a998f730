"""Exports and aggregates at volume, each beside a raw SQL baseline from the same run.

Run `python -m bench.bulk --help`. It creates a throw-away database on 127.0.0.1:5432,
starts `iotledger serve` on it (every role, one process), loads `--readings` readings
of one device (spread over 30 days of device time; `--devices` spreads them over more)
through the shared ingest, as `bench.rest` does, and measures:

- export: rows/s of `GET .../telemetry/export` (NDJSON, then CSV) of the device's
  readings, read to the end over HTTP, beside a raw `COPY (SELECT ...) TO STDOUT` of the
  same rows, in order, in text and CSV format, read to the end by psycopg;
- aggregate: the latency of `GET .../telemetry/aggregate` of 30 days in hourly buckets
  (median of `--repeat`), beside the same SQL run straight on a connection and beside a
  plain `date_trunc` + `min/max/avg` SQL aggregate without first/last.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import httpx
import psycopg
from psycopg import sql

from bench.readings import Queryable, database, database_options
from bench.rest import server, sign_up, submit_all
from iotledger.adapters.postgres.views.aggregates import (
    BucketWidth,
    Window,
    aggregate_query,
)
from iotledger.application.readings import RecordReading
from iotledger.bootstrap import App, build
from iotledger.settings import DatabaseUrl, Settings

DAYS = 30
TARGET_MS = 100.0
_RAW_COLUMNS = "id, telemetry_type, payload, recorded_at"
_RAW_AGGREGATE = (
    "SELECT date_trunc('hour', recorded_at), count(*), min(x), max(x), avg(x) FROM"
    " (SELECT recorded_at, (payload ->> 'temperature')::float8 AS x FROM readings"
    " WHERE device_id = %s AND recorded_at >= %s AND recorded_at < %s) r GROUP BY 1 ORDER BY 1"
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__)
    database_options(p, broker=True)
    p.add_argument(
        "--readings", type=int, default=1_000_000, help="readings loaded (default: %(default)s)"
    )
    p.add_argument(
        "--devices",
        type=int,
        default=1,
        help="devices the readings are spread over; the measured one is the first "
        "(default: %(default)s: every reading is the measured device's)",
    )
    p.add_argument(
        "--repeat", type=int, default=20, help="aggregate requests timed (default: %(default)s)"
    )
    p.add_argument("--explain", action="store_true", help="print the aggregate's plan")
    p.add_argument("--api-processes", type=int, default=0, help=argparse.SUPPRESS)
    return p


async def store(services: App, device: uuid.UUID, args: argparse.Namespace) -> int:
    """The readings through the ingest, 30 days of device time; the last position."""
    devices = [device, *(uuid.uuid4() for _ in range(args.devices - 1))]
    start = datetime.now(UTC) - timedelta(days=DAYS)
    step = timedelta(days=DAYS) / args.readings
    last, batch = 0, 50_000
    for first in range(0, args.readings, batch):
        cmds = [
            RecordReading(
                device_id=devices[n % len(devices)],
                telemetry_type="environment",
                payload={"temperature": 15 + n % 150 / 10, "humidity": n % 100},
                recorded_at=start + n * step,
                by="device:bench",
                key=str(n),
            )
            for n in range(first, min(first + batch, args.readings))
        ]
        last = max(last, await submit_all(services, cmds, 32, 100))
    return last


def load(url: DatabaseUrl, device: uuid.UUID, args: argparse.Namespace) -> float:
    """Readings/s until the served projection applied the last; then settled as at rest."""
    settings = Settings(database_url=url, data_dir=Path(mkdtemp()), jwt_secret="bench")
    services = build(settings, url)
    try:
        with Queryable(url) as watch:
            started = time.perf_counter()
            done = watch.wait_for(asyncio.run(store(services, device, args)), timeout=3600)
    finally:
        services.close()
    with psycopg.connect(str(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) readings")
        conn.execute("CHECKPOINT")
    return float(args.readings / (done - started))


def raw_copy(url: DatabaseUrl, device: uuid.UUID, options: str) -> tuple[float, int]:
    """Rows/s and bytes of a raw COPY of the device's readings in device-time order."""
    query = (
        f"COPY (SELECT {_RAW_COLUMNS} FROM readings WHERE device_id = '{device}'"
        f" ORDER BY recorded_at, lambda_id) TO STDOUT {options}"
    )
    size = 0
    with psycopg.connect(str(url)) as conn, conn.cursor() as cursor:
        started = time.perf_counter()
        with cursor.copy(query) as copy:  # type: ignore[arg-type]  # the query is ours
            for data in copy:
                size += len(data)
        elapsed = time.perf_counter() - started
        count = conn.execute("SELECT count(*) FROM readings WHERE device_id = %s", (device,))
        rows = int(count.fetchone()[0])  # type: ignore[index]
    return rows / elapsed, size


def export(base: str, token: str, device: str, fmt: str) -> tuple[float, int]:
    """Rows/s and bytes of the export over HTTP, read to the end."""
    url = f"{base}/api/v1/devices/{device}/telemetry/export?format={fmt}"
    lines = size = 0
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    with httpx.stream("GET", url, headers=headers, timeout=600) as response:
        response.raise_for_status()
        for piece in response.iter_bytes(256 * 1024):
            lines += piece.count(b"\n")
            size += len(piece)
    elapsed = time.perf_counter() - started
    rows = lines - 1 if fmt == "csv" else lines  # the header
    return rows / elapsed, size


def window(device: uuid.UUID) -> Window:
    until = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = until - timedelta(days=DAYS)
    return Window(device, BucketWidth.HOUR, "UTC", since, until, path=("temperature",))


def median_ms(run: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def aggregates(url: DatabaseUrl, base: str, token: str, device: str, args: Any) -> list[float]:
    """Median ms of: the HTTP aggregate, its SQL on a connection, a plain SQL aggregate."""
    w = window(uuid.UUID(device))
    query, params = aggregate_query(w)
    params["most"] = 10_001
    http_query = {
        "field": "temperature",
        "bucket": "1h",
        "from": w.since.isoformat() if w.since else "",
        "to": w.until.isoformat() if w.until else "",
    }
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/api/v1/devices/{device}/telemetry/aggregate"
    with psycopg.connect(str(url)) as conn, httpx.Client(base_url=base, timeout=60) as client:
        if args.explain:
            plan = conn.execute(sql_explain(query), params).fetchall()
            print("\n".join(row[0] for row in plan))
        buckets = client.get(path, params=http_query, headers=headers).json()
        print(f"aggregate: {len(buckets)} buckets", flush=True)
        return [
            median_ms(lambda: client.get(path, params=http_query, headers=headers), args.repeat),
            median_ms(lambda: conn.execute(query, params).fetchall(), args.repeat),
            median_ms(
                lambda: conn.execute(_RAW_AGGREGATE, (w.device_id, w.since, w.until)).fetchall(),
                args.repeat,
            ),
        ]


def sql_explain(query: Any) -> Any:
    return sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + query


def storage(url: DatabaseUrl) -> list[tuple[str, str, str]]:
    """Bytes per row of the log and the read models (tables with their indexes)."""
    found = []
    with psycopg.connect(str(url)) as conn:
        for table in ("iotledger_events", "readings", "reading_rollups"):
            size, rows = conn.execute(
                sql.SQL("SELECT pg_total_relation_size({}), (SELECT count(*) FROM {})").format(
                    sql.Literal(table), sql.Identifier(table)
                )
            ).fetchone() or (0, 0)
            found.append(
                (f"storage: {table}", f"{size / max(rows, 1):,.0f} B/row", f"{rows:,} rows")
            )
    return found


def main() -> None:
    args = parser().parse_args()
    with database(args) as url, server(url, args) as (base, _pids):
        token, device = sign_up(base)
        print(f"loading {args.readings:,} readings ...", flush=True)
        rate = load(url, uuid.UUID(device), args)
        print(f"loaded at {rate:,.0f} readings/s (ingest to projected)", flush=True)
        rows: list[tuple[str, str, str]] = []
        for fmt, options in (("ndjson", ""), ("csv", "(FORMAT csv, HEADER)")):
            raw, raw_size = raw_copy(url, uuid.UUID(device), options)
            ours, size = export(base, token, device, fmt)
            rows.append((f"raw COPY TO STDOUT {options or '(text)'}", f"{raw:,.0f} rows/s", ""))
            beside = f"{ours / raw:.0%} of COPY; {size / raw_size:.1f}x its bytes"
            rows.append((f"export {fmt} over HTTP", f"{ours:,.0f} rows/s", beside))
        http, direct, plain = aggregates(url, base, token, device, args)
        verdict = "met" if http < TARGET_MS else "MISSED"
        rows += [
            ("plain SQL hourly min/max/avg (30 days)", f"{plain:.1f} ms", ""),
            ("aggregate SQL on a connection", f"{direct:.1f} ms", f"{direct / plain:.2f}x plain"),
            ("aggregate over HTTP", f"{http:.1f} ms", f"< {TARGET_MS:.0f} ms {verdict}"),
        ]
        rows += storage(url)
        print(f"\n{args.readings:,} readings, {args.devices} device(s), measured device first")
        for row in rows:
            print(
                " | ".join(cell.ljust(width) for cell, width in zip(row, (44, 18, 30), strict=True))
            )


if __name__ == "__main__":
    main()
