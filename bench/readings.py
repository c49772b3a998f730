"""How fast readings become queryable, beside a raw COPY into the same PostgreSQL.

Run `python -m bench.readings --help`. By default it creates a throw-away
database on 127.0.0.1:5432, measures, and drops it. Figures:

- baseline: a raw binary COPY of as many event-shaped rows into a scratch table;
- throughput: readings submitted by many concurrent submitters through
  `CopyReadingAppender`, until the readings projection has applied every one;
- latency: submit-to-queryable of single readings at a steady rate;
- rebuild: wiping the readings read model and replaying it from the log.

Everything runs in this one process (submitters, the ingest worker, the
projection runner), as `iotledger serve` would, on whatever cores the machine has.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing
import random
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from tempfile import mkdtemp

import psycopg

from iotledger.adapters.postgres.database import migrate
from iotledger.adapters.postgres.reading_log import stored_state
from iotledger.adapters.postgres.views.base import PROJECTIONS_CHANNEL
from iotledger.application.readings import RECORDED_TOPIC, RecordReading
from iotledger.bootstrap import App, build
from iotledger.maintenance import rebuild
from iotledger.settings import DatabaseUrl, Settings, parse_database_url

TARGETS = {"throughput": 15_000.0, "p99_ms": 250.0, "rebuild": 50_000.0, "batched": 50_000.0}
"""`batched`: readings/s when devices send them in batches (of 100 a message or request)."""


def database_options(p: argparse.ArgumentParser, broker: bool = False) -> None:
    """--database-url and --server-url (see `database`), and with `broker` --mqtt-url."""
    p.add_argument(
        "--database-url",
        help="an existing database to use as is (default: a throw-away database on "
        "--server-url, dropped afterwards)",
    )
    p.add_argument(
        "--server-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="the server to create the throw-away database on (default: %(default)s)",
    )
    if broker:
        p.add_argument(
            "--mqtt-url",
            default="mqtt://127.0.0.1:1883",
            help="the broker `iotledger serve` connects to (default: %(default)s)",
        )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.readings",
        description="Measure reading ingest, submit-to-queryable latency and projection "
        "rebuild, each beside a raw binary COPY baseline measured in the same run.",
    )
    database_options(p)
    p.add_argument(
        "--readings",
        type=int,
        default=200_000,
        help="throughput: readings to submit, and rows of the baseline COPY (default: %(default)s)",
    )
    p.add_argument(
        "--submitters",
        type=int,
        default=64,
        help="throughput: concurrent submitters (default: %(default)s)",
    )
    p.add_argument(
        "--chunk",
        type=int,
        default=10,
        help="throughput: readings per submit call (default: %(default)s)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=5_000.0,
        help="latency: readings per second, one per submit call (default: %(default)s)",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        help="latency: how long to keep the rate (default: %(default)s)",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=200,
        help="devices the readings come from (default: %(default)s)",
    )
    p.add_argument(
        "--same-process",
        action="store_true",
        help="run the readings projection as a thread of the submitting process, as a single "
        "`iotledger serve` does (default: in a process of its own, as "
        "`iotledger serve --role projections` does)",
    )
    return p


@dataclass
class Figures:
    baseline: float = 0.0
    throughput: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    acks_ms: list[float] = field(default_factory=list)
    rebuild: float = 0.0
    rebuilt_events: int = 0


class Readings:
    """Plausible readings: a few devices, two telemetry types, small JSON payloads."""

    def __init__(self, devices: int) -> None:
        self.devices = [uuid.uuid4() for _ in range(devices)]
        self.start = datetime.now(UTC) - timedelta(days=1)
        self.n = 0

    def next(self) -> RecordReading:
        self.n += 1
        return RecordReading(
            device_id=self.devices[self.n % len(self.devices)],
            telemetry_type="environment" if self.n % 2 else "power",
            payload={"temperature": round(random.uniform(15, 30), 2), "humidity": self.n % 100},
            recorded_at=self.start + timedelta(milliseconds=self.n),
            by="device:bench",
            key=str(self.n),
        )


# --- the baseline -------------------------------------------------------------------


def measure_copy_baseline(url: DatabaseUrl, rows: int) -> float:
    """Rows/s of a raw binary COPY of event-shaped rows (encoded beforehand) into a table."""
    source = Readings(16)
    now = datetime.now(UTC)
    prepared = []
    for _ in range(rows):
        reading = source.next()
        prepared.append((reading.reading_id, 1, RECORDED_TOPIC, stored_state(reading, now)))
    with psycopg.connect(str(url), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_copy (originator_id uuid, originator_version int8,"
            " topic text, state bytea)"
        )
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy("COPY bench_copy FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(("uuid", "int8", "text", "bytea"))
            for row in prepared:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy")
    return rows / elapsed


# --- watching the projection --------------------------------------------------------


class Queryable:
    """When the readings projection reached each position, heard from its NOTIFYs."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.reached: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def __enter__(self) -> Queryable:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _listen(self) -> None:
        with psycopg.connect(str(self.url), autocommit=True) as conn:
            conn.execute(f"LISTEN {PROJECTIONS_CHANNEL}")
            self._ready.set()
            while not self._stop.is_set():
                for notify in conn.notifies(timeout=0.2):
                    name, _, position = notify.payload.rpartition(":")
                    if name == "readings":
                        self.reached.append((int(position), time.perf_counter()))

    def position(self) -> int:
        return self.reached[-1][0] if self.reached else 0

    def wait_for(self, position: int, timeout: float = 120.0) -> float:
        """The moment the projection reached `position`."""
        deadline = time.perf_counter() + timeout
        while self.position() < position:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the projection did not reach {position}")
            time.sleep(0.001)
        return next(at for reached, at in self.reached if reached >= position)

    def times_of(self, positions: list[int]) -> list[float]:
        """For each position, when it became queryable (positions need not be sorted)."""
        reached = sorted(self.reached)
        found = []
        index = 0
        for position in sorted(range(len(positions)), key=positions.__getitem__):
            while reached[index][0] < positions[position]:
                index += 1
            found.append((position, reached[index][1]))
        return [at for _, at in sorted(found)]


# --- throughput and latency ----------------------------------------------------------


def prebuilt(source: Readings, count: int) -> list[RecordReading]:
    """Commands built before the clock starts, then kept out of the garbage collector's
    sight: scanning a heap of them again and again would pause everything, and a real
    server's requests come and go instead of piling up."""
    cmds = [source.next() for _ in range(count)]
    gc.collect()
    gc.freeze()
    return cmds


async def submit_concurrently(services: App, args: argparse.Namespace) -> tuple[float, int]:
    """Every submitter takes chunks until all are in; (when it started, the last position)."""
    source = Readings(args.devices)
    cmds = prebuilt(source, args.readings)
    chunks = iter(range(0, len(cmds), args.chunk))
    last = 0

    async def submitter() -> None:
        nonlocal last
        for start in chunks:
            outcomes = await services.recording.record(cmds[start : start + args.chunk])
            last = max(last, outcomes[-1].position)

    started = time.perf_counter()
    await asyncio.gather(*(submitter() for _ in range(args.submitters)))
    return started, last


def measure_throughput(services: App, args: argparse.Namespace) -> float:
    with Queryable(services.database_url) as watch:
        started, last = asyncio.run(submit_concurrently(services, args))
        done = watch.wait_for(last)
    return float(args.readings / (done - started))


async def submit_steadily(
    services: App, args: argparse.Namespace
) -> tuple[list[float], list[float], list[int]]:
    """One reading per submit, at a steady rate; (sent, acknowledged, position) of each."""
    source = Readings(args.devices)
    cmds = prebuilt(source, int(args.rate * args.seconds))
    sent = [0.0] * len(cmds)
    acked = [0.0] * len(cmds)
    positions = [0] * len(cmds)

    async def one(i: int) -> None:
        sent[i] = time.perf_counter()
        (outcome,) = await services.recording.record(cmds[i : i + 1])
        acked[i] = time.perf_counter()
        positions[i] = outcome.position

    tasks = []
    started = time.perf_counter()
    for i in range(len(cmds)):
        delay = started + i / args.rate - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return sent, acked, positions


def measure_latency(services: App, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    with Queryable(services.database_url) as watch:
        sent, acked, positions = asyncio.run(submit_steadily(services, args))
        watch.wait_for(max(positions))
        queryable = watch.times_of(positions)
    latencies = [(q - s) * 1000 for q, s in zip(queryable, sent, strict=True)]
    acks = [(a - s) * 1000 for a, s in zip(acked, sent, strict=True)]
    return latencies, acks


# --- rebuild ---------------------------------------------------------------------------


def measure_rebuild(services: App) -> tuple[float, int]:
    """Events/s of `iotledger projections rebuild readings`, on the log at rest.

    The phases before wrote hundreds of thousands of rows a moment ago; left alone,
    autovacuum and the checkpointer would spend this run's two cores on them. An
    operator rebuilds a log that has long been vacuumed and flushed, so we settle it
    first (VACUUM ANALYZE, CHECKPOINT), outside the clock.
    """
    with psycopg.connect(str(services.database_url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) iotledger_events")
        conn.execute("VACUUM (ANALYZE) readings")
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")  # needs superuser or pg_checkpoint; skipped without
        row = conn.execute(
            "SELECT count(*) FROM iotledger_events WHERE topic = %s", (RECORDED_TOPIC,)
        ).fetchone()
    events = int(row[0]) if row else 0
    started = time.perf_counter()
    rebuild(services, ["readings"], lambda *_: None)
    elapsed = time.perf_counter() - started
    if services.views.readings.count() != events:
        raise RuntimeError("the rebuilt read model does not hold every reading")
    return events / elapsed, events


# --- the run -----------------------------------------------------------------------------


@contextlib.contextmanager
def database(args: argparse.Namespace) -> Iterator[DatabaseUrl]:
    if args.database_url:
        yield parse_database_url(args.database_url)
        return
    server = parse_database_url(args.server_url)
    name = f"iotledger_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(str(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield DatabaseUrl(server.host, server.port, server.user, server.password, name)
    finally:
        with psycopg.connect(str(server), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running(url: DatabaseUrl, *projections: str) -> Iterator[App]:
    """iotledger on this database, with these projections running."""
    settings = Settings(database_url=url, data_dir=Path(mkdtemp()), jwt_secret="bench")
    services = build(settings, url)
    migrate(url, services.ledger)
    runners = services.projections.start(projections) if projections else []
    try:
        yield services
    finally:
        services.projections.stop(runners)
        services.close()


def _project(url: str, ready: EventType, stop: EventType) -> None:
    with running(parse_database_url(url), "readings"):
        ready.set()
        stop.wait()


@contextlib.contextmanager
def projected_elsewhere(url: DatabaseUrl, wanted: bool) -> Iterator[None]:
    """The readings projection in a process of its own, while this block runs."""
    if not wanted:
        yield
        return
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    process = context.Process(target=_project, args=(str(url), ready, stop), daemon=True)
    process.start()
    if not ready.wait(60):
        raise RuntimeError("the projection process did not start")
    try:
        yield
    finally:
        stop.set()
        process.join(30)


def measure(args: argparse.Namespace) -> Figures:
    figures = Figures()
    with database(args) as url:
        print(f"database {url.redacted()}", flush=True)
        figures.baseline = measure_copy_baseline(url, args.readings)
        print(f"baseline COPY: {figures.baseline:,.0f} rows/s", flush=True)
        projections = ("readings",) if args.same_process else ()
        with (
            projected_elsewhere(url, not args.same_process),
            running(url, *projections) as services,
        ):
            figures.throughput = measure_throughput(services, args)
            print(f"throughput: {figures.throughput:,.0f} readings/s", flush=True)
            figures.latencies_ms, figures.acks_ms = measure_latency(services, args)
            print(f"latency: p99 {percentile(figures.latencies_ms, 99):.1f} ms", flush=True)
        with running(url) as services:
            figures.rebuild, figures.rebuilt_events = measure_rebuild(services)
            print(f"rebuild: {figures.rebuild:,.0f} events/s", flush=True)
    return figures


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def report(figures: Figures, args: argparse.Namespace) -> str:
    base = figures.baseline
    lat = figures.latencies_ms
    rows = [
        ("baseline: raw binary COPY", f"{base:,.0f} rows/s", "", ""),
        (
            f"ingest -> queryable ({args.submitters} submitters x {args.chunk})",
            f"{figures.throughput:,.0f} readings/s",
            f"{figures.throughput / base:.0%} of COPY",
            verdict(figures.throughput >= TARGETS["throughput"], ">= 15,000/s"),
        ),
        *(
            (
                f"latency p{p} at {args.rate:,.0f}/s",
                f"{percentile(lat, p):,.1f} ms",
                "",
                verdict(percentile(lat, 99) <= TARGETS["p99_ms"], "<= 250 ms") if p == 99 else "",
            )
            for p in (50, 95, 99)
        ),
        (
            f"ack p99 at {args.rate:,.0f}/s (submit to committed)",
            f"{percentile(figures.acks_ms, 99):,.1f} ms",
            "",
            "",
        ),
        (
            f"projection rebuild ({figures.rebuilt_events:,} events)",
            f"{figures.rebuild:,.0f} events/s",
            f"{figures.rebuild / base:.0%} of COPY",
            verdict(figures.rebuild >= TARGETS["rebuild"], ">= 50,000/s"),
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    header = ("figure", "measured", "beside baseline", "target")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    lines = [fmt(header, widths), fmt(tuple("-" * w for w in widths), widths)]
    lines.extend(fmt(row, widths) for row in rows)
    return "\n".join(lines)


def verdict(met: bool, target: str) -> str:
    return f"{target} {'met' if met else 'MISSED'}"


def fmt(row: tuple[str, ...], widths: list[int]) -> str:
    return " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))


def main() -> None:
    args = parser().parse_args()
    figures = measure(args)
    print()
    print(report(figures, args))


if __name__ == "__main__":
    main()
