"""The readings benchmark's MQTT mode: many devices publish QoS 1 telemetry, until queryable.

Run `python -m bench.mqtt_readings --help`. It creates a throw-away database (as
`bench.readings` does), starts a Mosquitto of its own (configured as
`deploy/mosquitto.conf` is: many messages in flight, none dropped), registers
the devices, and runs the `mqtt` role (in this process, or as `iotledger serve
--role mqtt` processes sharing the subscriptions) and the readings projection.
Then `--clients` MQTT clients (`mosquitto_pub`, so that the publishers cost
the machine little) each publish their share of `--readings` telemetry
messages at QoS 1 on their device's topic, as fast as the broker lets them.

`--batch N` puts N readings in each message (a JSON array: the batched form of
the telemetry topic), for the "batches of 100 readings per message" figure; its
target is `TARGETS["batched"]` readings/s instead of the one-reading-a-message one.
Beside them, a raw binary COPY of as many event-shaped rows into a (logged) table
of the same database, measured in the same run (`bench.readings`' baseline).

Figures: the time until every message is acknowledged (so stored: the adapter
acknowledges after commit), and until the readings projection has applied all
of them (queryable); readings/s is `--readings` over the latter. Every reading
must be stored exactly once. Then the CPU each part of the machine spent per
reading meanwhile (from `/proc/<pid>/stat`; on a shared machine these move
less than wall time): the adapter (this process, or the serve processes), the
broker, the publishers, the readings projection's process, and the PostgreSQL
backends of the benchmark's database; and how busy the whole machine was.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import msgspec
import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from bench.readings import (
    TARGETS,
    Queryable,
    database,
    database_options,
    fmt,
    measure_copy_baseline,
    projected_elsewhere,
    running,
    verdict,
)
from iotledger.adapters.postgres.reading_log import readings_channel
from iotledger.application.devices import RegisterDevice
from iotledger.bootstrap import App
from iotledger.domain.vocabulary import DeviceStatus
from iotledger.roles.mqtt import mqtt_role
from iotledger.settings import DatabaseUrl, MqttUrl

T = TypeVar("T")

BROKER_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 1000
max_queued_messages 0
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.mqtt_readings",
        description="Measure readings published over MQTT (QoS 1) until they are queryable.",
    )
    database_options(p)
    p.add_argument("--readings", type=int, default=200_000, help="telemetry readings in all")
    p.add_argument(
        "--batch",
        type=int,
        default=1,
        help="readings per message: 1 sends telemetry objects, more a JSON array of them "
        "(default: %(default)s)",
    )
    p.add_argument("--clients", type=int, default=50, help="publishing clients (one device each)")
    p.add_argument(
        "--adapters",
        type=int,
        default=0,
        help="`iotledger serve --role mqtt` processes sharing the messages; 0: in this process",
    )
    p.add_argument("--mosquitto", default="/usr/sbin/mosquitto")
    p.add_argument("--mosquitto-pub", default="mosquitto_pub")
    return p


@contextlib.contextmanager
def broker(mosquitto: str, workdir: Path) -> Iterator[MqttUrl]:
    """A Mosquitto of the benchmark's own on a free port, stopped afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = workdir / "mosquitto.conf"
    config.write_text(BROKER_CONFIG.format(port=port))
    process = subprocess.Popen([mosquitto, "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _answers(port):
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not start")
            time.sleep(0.05)
        yield MqttUrl(host="127.0.0.1", port=port, username=None, password=None)
    finally:
        process.terminate()
        process.wait(10)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def register_devices(services: App, count: int) -> list[uuid.UUID]:
    at = datetime.now(UTC)
    ids = []
    for n in range(count):
        command = RegisterDevice(uuid.uuid4(), None, f"bench-{n}", DeviceStatus.OK, "system", at)
        ids.append(services.ledger.register_device(command).id)
    return ids


def message_files(workdir: Path, clients: int, readings: int, batch: int) -> list[Path]:
    """One file per client: one telemetry message per line (a reading, or an array of
    `batch` readings when `batch` > 1), each reading with its own id."""
    encode = msgspec.json.Encoder().encode
    start = datetime.now(UTC) - timedelta(days=1)
    files = []
    for index in range(clients):
        share = readings // clients + (1 if index < readings % clients else 0)
        path = workdir / f"client-{index}.jsonl"
        with path.open("wb") as out:
            for first in range(0, share, batch):
                message = [
                    {
                        "telemetry_type": "environment" if n % 2 else "power",
                        "payload": {"temperature": 20 + n % 10, "humidity": n % 100},
                        "recorded_at": start + timedelta(milliseconds=n),
                        "id": f"{index}-{n}",
                    }
                    for n in range(first, min(first + batch, share))
                ]
                out.write(encode(message if batch > 1 else message[0]) + b"\n")
        files.append(path)
    return files


class InProcessAdapter:
    """The `mqtt` role on an event loop of its own, as `serve` runs it."""

    def __init__(self, services: App, url: MqttUrl) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._context = mqtt_role(services, url, client_id=f"bench-{uuid.uuid4().hex[:6]}")
        role = self._run(self._context.__aenter__())
        if not self._run(role.link.wait_ready(10)):
            raise RuntimeError("the adapter did not subscribe")
        self.counters = role.counters

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(60)

    def close(self) -> None:
        self._run(self._context.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)


@contextlib.contextmanager
def adapters(
    services: App, url: MqttUrl, count: int, db: DatabaseUrl
) -> Iterator[tuple[str, list[int]]]:
    """The `mqtt` role: in this process (count 0) or in `count` serve processes (their pids)."""
    if count == 0:
        adapter = InProcessAdapter(services, url)
        try:
            yield "in-process adapter", []
        finally:
            print(f"adapter counters: {dict(adapter.counters)}", flush=True)
            adapter.close()
        return
    command = [str(Path(sys.executable).parent / "iotledger"), "serve", "--role", "mqtt"]
    processes = [
        subprocess.Popen(command, env=_role_env(services, url, db, n)) for n in range(count)
    ]
    try:
        time.sleep(3)  # connected and subscribed
        if any(process.poll() is not None for process in processes):
            raise RuntimeError("a `serve --role mqtt` process exited (its output is above)")
        yield f"{count} `serve --role mqtt` processes", [p.pid for p in processes]
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)


def _role_env(services: App, url: MqttUrl, db: DatabaseUrl, n: int) -> dict[str, str]:
    return {
        **os.environ,
        "IOTLEDGER_DATABASE_URL": str(db),
        "IOTLEDGER_MQTT_URL": str(url),
        "IOTLEDGER_MQTT_TOPIC": services.settings.mqtt_topic,
        "IOTLEDGER_MQTT_CLIENT_ID": f"bench-{n}",
        "IOTLEDGER_JWT_SECRET": "bench-secret-of-at-least-32-bytes",
        "IOTLEDGER_LOG_LEVEL": "WARNING",
    }


def publish_all(
    args: argparse.Namespace, url: MqttUrl, topics: list[str], files: list[Path]
) -> None:
    """Every client publishes its file, one QoS 1 message per line; returns when all are acked."""
    processes = []
    for topic, path in zip(topics, files, strict=True):
        with path.open("rb") as lines:
            processes.append(
                subprocess.Popen(
                    [
                        args.mosquitto_pub,
                        "-h",
                        url.host,
                        "-p",
                        str(url.port),
                        "-q",
                        "1",
                        "-t",
                        topic,
                        "-l",
                        "-V",
                        "mqttv311",
                    ],
                    stdin=lines,
                )
            )
    for process in processes:
        if process.wait(600) != 0:
            raise RuntimeError("a publishing client failed")


class Figures(NamedTuple):
    baseline: float
    """Rows/s of a raw binary COPY of as many event-shaped rows, in the same run."""
    published: float
    stored: float
    queryable: float
    stored_readings: int
    how: str
    cpu: dict[str, float]
    """CPU seconds each part spent meanwhile, and "machine": the busy share of every core."""


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """Seconds of CPU a process (all its threads) has used; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of every core since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def processes() -> Iterator[tuple[int, int, str, str]]:
    """(pid, parent pid, command name, command line) of every process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        parent = int(stat.rpartition(")")[2].split()[1])
        yield int(entry.name), parent, name, cmdline


def parts(db: DatabaseUrl, adapters: list[int]) -> dict[str, list[int]]:
    """The processes of each part: adapter, broker, projection, PostgreSQL (this database)."""
    me = os.getpid()
    found: dict[str, list[int]] = {
        "adapter": adapters or [me],
        "broker": [],
        "projection": [],  # the spawned projection process (and multiprocessing's tracker)
        "postgresql": [],
    }
    for pid, parent, name, cmdline in processes():
        if parent == me and name == "mosquitto":
            found["broker"].append(pid)
        elif parent == me and name.startswith("python"):
            found["projection"].append(pid)
        elif name == "postgres" and f" {db.dbname} " in cmdline:
            found["postgresql"].append(pid)
    return found


class CpuMeter:
    """CPU seconds of each part between `start` and `stop`, and the machine's busy share."""

    def __init__(self, db: DatabaseUrl, adapters: list[int]) -> None:
        self._db = db
        self._adapters = adapters
        self._before: dict[int, float] = {}
        self._machine = (0, 0)
        self._children = 0.0

    def start(self) -> None:
        self._before = {pid: process_cpu(pid) for pids in self._parts().values() for pid in pids}
        self._machine = machine_cpu()
        self._children = _children_cpu()

    def stop(self, publishers_done: float) -> dict[str, float]:
        spent = {
            part: sum(process_cpu(pid) - self._before.get(pid, 0.0) for pid in pids)
            for part, pids in self._parts().items()
        }
        spent["publishers"] = publishers_done - self._children
        busy, total = machine_cpu()
        spent["machine"] = (busy - self._machine[0]) / max(total - self._machine[1], 1)
        return spent

    def _parts(self) -> dict[str, list[int]]:
        return parts(self._db, self._adapters)


def _children_cpu() -> float:
    """CPU of the children waited for so far: after `publish_all`, the publishers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(args: argparse.Namespace) -> Figures:
    workdir = Path(tempfile.mkdtemp(prefix="iotledger-bench-"))
    with (
        database(args) as db,
        projected_elsewhere(db, True),
        running(db) as services,
        broker(args.mosquitto, workdir) as url,
    ):
        baseline = measure_copy_baseline(db, args.readings)
        print(f"baseline COPY: {baseline:,.0f} rows/s", flush=True)
        devices = register_devices(services, args.clients)
        topics = [services.topics.telemetry(device) for device in devices]
        files = message_files(workdir, len(devices), args.readings, args.batch)
        before = services.views.readings.count()
        with adapters(services, url, args.adapters, db) as (how, pids), Queryable(db) as watch:
            print(
                f"publishing {args.readings:,} readings, {args.batch} a message,"
                f" from {args.clients} clients to {how}"
            )
            last = (services.ledger.recorder.max_notification_id() or 0) + args.readings
            meter = CpuMeter(db, pids)
            meter.start()
            started = time.perf_counter()
            publish_all(args, url, topics, files)
            published = time.perf_counter()
            publishers = _children_cpu()
            stored = stored_by(services, db, last, pids) - started
            queryable = watch.wait_for(last) - started
            cpu = meter.stop(publishers)
        count = services.views.readings.count() - before
    return Figures(baseline, published - started, stored, queryable, count, how, cpu)


def stored_by(
    services: App, db: DatabaseUrl, position: int, adapters: list[int], timeout: float = 600.0
) -> float:
    """When the log holds `position` (every reading appended: nothing else writes now).

    Looked at after each append's NOTIFY rather than by polling, which would cost this
    process (the adapter's, when it runs in-process) CPU of its own.
    """
    recorder = services.ledger.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    deadline = time.perf_counter() + timeout
    with psycopg.connect(str(db), autocommit=True) as conn:
        channel = sql.Identifier(readings_channel(recorder.channel_name))
        conn.execute(sql.SQL("LISTEN {}").format(channel))
        while (recorder.max_notification_id() or 0) < position:
            if time.perf_counter() > deadline:
                raise TimeoutError("not every reading was stored")
            if not all(_running(pid) for pid in adapters):
                raise RuntimeError("a `serve --role mqtt` process exited (its output is above)")
            for _ in conn.notifies(timeout=0.5, stop_after=1):
                pass
    return time.perf_counter()


def _running(pid: int) -> bool:
    """Not exited (a child that exited stays a zombie until it is waited for)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def main() -> None:
    args = parser().parse_args()
    figures = measure(args)
    rate = args.readings / figures.queryable
    target = TARGETS["batched" if args.batch > 1 else "throughput"]
    rows = [
        ("baseline: raw binary COPY", f"{figures.baseline:,.0f} rows/s", "", ""),
        ("readings published (QoS 1)", f"{args.readings:,}", f"{args.batch} a message", ""),
        (
            "readings stored",
            f"{figures.stored_readings:,}",
            "",
            verdict(figures.stored_readings == args.readings, "each once"),
        ),
        ("all taken by the broker", f"{figures.published:.2f} s", "", ""),
        (
            "all stored (appended, acknowledged)",
            f"{figures.stored:.2f} s",
            f"{args.readings / figures.stored:,.0f}/s",
            "",
        ),
        (
            f"publish -> queryable ({args.clients} clients, {figures.how})",
            f"{figures.queryable:.2f} s",
            f"{rate:,.0f} readings/s, {rate / figures.baseline:.0%} of COPY",
            verdict(rate >= target, f">= {target:,.0f}/s"),
        ),
    ]
    print_table(("figure", "measured", "rate", "target"), rows)
    cpu = figures.cpu
    adapter = f"{args.adapters} serve processes" if args.adapters else "in this process"
    labels = {"adapter": f"adapter ({adapter})", "postgresql": "postgresql (this database)"}
    shares = [
        (
            labels.get(part, part),
            f"{cpu[part] / args.readings * 1e6:,.1f} us",
            f"{cpu[part] / figures.queryable:.2f} cores",
        )
        for part in ("adapter", "broker", "publishers", "projection", "postgresql")
    ]
    shares.append(("machine busy (every core)", "", f"{cpu['machine']:.0%}"))
    print_table(("CPU per reading, publish -> queryable", "per reading", "on average"), shares)


def print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    print(fmt(header, widths))
    print(fmt(tuple("-" * w for w in widths), widths))
    for row in rows:
        print(fmt(row, widths))


if __name__ == "__main__":
    main()
