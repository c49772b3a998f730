"""Readings over REST: `iotledger serve` under `wrk`, beside baselines from the same run.

Run `python -m bench.rest --help`. It creates a throw-away database on
127.0.0.1:5432 (or uses `--database-url`), starts `iotledger serve` against it (every
role in one process; or, with `--api-processes N`, a `--role projections` process
and N `--role api` processes sharing the port), registers a user and a device
through the Device Telemetry API, and measures with `wrk` (Debian's package `wrk`):

- baseline: `GET /health` (a request that does no work) with the same connections;
- `POST /api/v1/devices/{id}/telemetry`, each request a reading with its own
  device time (or, with `--batch N`, a JSON array of N such readings), answered once
  it is committed to the log;
- `GET /api/v1/devices/{id}/telemetry?limit=10` after `--stored` readings (default a
  million, spread over `--devices` devices, the benchmarked one among them) went in
  through the ingest engine directly and the server's readings projection applied them:
  as fast as the connections go (saturated), and at a steady `--get-rate`;
- `GET /api/v1/devices/{id}` and `GET /api/v1/devices?limit=10` (of 20 devices),
  saturated, each with the server's CPU per request.

The raw binary COPY baseline of `bench.readings` is measured too. The server is
stopped and the database dropped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import mkdtemp
from typing import Any, LiteralString

import httpx
import psycopg

from bench.readings import TARGETS as ENGINE_TARGETS
from bench.readings import (
    Queryable,
    database,
    database_options,
    fmt,
    measure_copy_baseline,
    verdict,
)
from iotledger.application.readings import RecordReading
from iotledger.bootstrap import App, build
from iotledger.settings import DatabaseUrl, Settings

TARGETS = {"post_rps": 6_000.0, "get_p99_ms": 25.0, "device_rps": 6_500.0}
"""Issue #17's: POST twice the Go implementation's, device reads level with it."""
DEVICES_LISTED = 20
"""Devices of the user for `GET /devices?limit=10` (a full page, and a next one)."""
BATCHED_TARGET = ENGINE_TARGETS["batched"]
"""Readings/s posted in batches (`--batch` > 1), instead of the requests/s target."""

POST_SCRIPT = """
local token = "%(token)s"
local path = "%(path)s"
local base = os.time() - 86400
local batch = %(batch)d
local counter = 0
threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function reading()
  counter = counter + 1
  -- one microsecond of device time per reading and thread: no two readings alike
  local us = counter * 64 + id
  return string.format(
    '{"telemetry_type": "environment", "payload": {"temperature": 22.5}, '
    .. '"recorded_at": "%%s.%%06dZ"}',
    os.date("!%%Y-%%m-%%dT%%H:%%M:%%S", base + math.floor(us / 1000000)), us %% 1000000)
end
function request()
  local body = reading()
  if batch > 1 then
    local readings = {body}
    for i = 2, batch do readings[i] = reading() end
    body = "[" .. table.concat(readings, ",") .. "]"
  end
  return wrk.format("POST", path,
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end
"""

GET_SCRIPT = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer %(token)s"
"""

# Each connection waits a random pause (exponential, of mean `pause_ms`) before its next
# request: arrivals spread like independent clients', at about connections / pause a
# second while answers take much less than the pause. (Equal pauses would send the
# connections' requests in bursts, and measure the queue of each burst.)
PACED_SCRIPT = (
    GET_SCRIPT
    + """
math.randomseed(os.time())
function delay()
  return math.floor(-math.log(1 - math.random()) * %(pause_ms)d)
end
"""
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.rest",
        description="Measure the telemetry REST endpoints of `iotledger serve` with wrk, "
        "beside a GET /health baseline and a raw binary COPY baseline from the same run.",
    )
    database_options(p, broker=True)
    p.add_argument(
        "--connections", type=int, default=32, help="wrk connections (default: %(default)s)"
    )
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default: %(default)s)")
    p.add_argument(
        "--duration", type=int, default=10, help="seconds per load phase (default: %(default)s)"
    )
    p.add_argument(
        "--stored",
        type=int,
        default=1_000_000,
        help="readings stored before the GET phase (default: %(default)s)",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=100,
        help="devices the stored readings are spread over, the benchmarked one among "
        "them (default: %(default)s)",
    )
    p.add_argument(
        "--get-rate",
        type=int,
        default=250,
        help="requests/s of the steady GET phase, over the same connections (default: "
        "%(default)s, about what the Go implementation the issue names served saturated)",
    )
    p.add_argument(
        "--api-processes",
        type=int,
        default=0,
        help="0: `iotledger serve` with every role in one process; N > 0: a `--role "
        "projections` process and N `--role api` processes sharing the port "
        "(IOTLEDGER_REUSE_PORT) (default: %(default)s)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=1,
        help="readings per POST: 1 posts a telemetry object, more a JSON array of them "
        f"(target: {BATCHED_TARGET:,.0f} readings/s) (default: %(default)s)",
    )
    p.add_argument(
        "--copy-rows",
        type=int,
        default=200_000,
        help="rows of the raw binary COPY baseline (default: %(default)s)",
    )
    return p


@dataclass
class Load:
    """What wrk printed for one phase."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int  # non-2xx answers, socket errors and timeouts
    server_cpu_us: float = 0.0  # CPU of the `iotledger serve` process per answered request
    wrk_cpu: float = 0.0  # wrk's own CPU, in cores
    busy: float = 0.0  # the whole machine's CPU in use, 0 to 1


@dataclass
class Figures:
    copy: float = 0.0
    health: Load = field(default_factory=lambda: Load(0.0, 0.0, 0.0, 0, 0))
    post: Load = field(default_factory=lambda: Load(0.0, 0.0, 0.0, 0, 0))
    posted_stored: int = 0
    get_health: Load = field(default_factory=lambda: Load(0.0, 0.0, 0.0, 0, 0))
    get: Load = field(default_factory=lambda: Load(0.0, 0.0, 0.0, 0, 0))
    get_steady: Load = field(default_factory=lambda: Load(0.0, 0.0, 0.0, 0, 0))
    stored: int = 0
    store_rate: float = 0.0
    get_device: Load = field(default_factory=lambda: Load(0.0, 0.0, 0.0, 0, 0))
    list_devices: Load = field(default_factory=lambda: Load(0.0, 0.0, 0.0, 0, 0))


# --- wrk -----------------------------------------------------------------------------


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def process_cpu(pid: int) -> float:
    """Seconds of CPU a process (all its threads) has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def servers_cpu(pids: list[int]) -> float:
    return sum(process_cpu(pid) for pid in pids)


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of every core since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(url: str, args: argparse.Namespace, pids: list[int], script: str | None = None) -> Load:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    with contextlib.ExitStack() as stack:
        if script is not None:
            path = Path(mkdtemp()) / "script.lua"
            path.write_text(script)
            stack.callback(shutil.rmtree, path.parent)
            command += ["-s", str(path)]
        server_before, (busy_before, total_before) = servers_cpu(pids), machine_cpu()
        wrk_before, started = children_cpu(), time.perf_counter()
        out = subprocess.run(
            [*command, url], capture_output=True, text=True, check=True, timeout=args.duration + 60
        ).stdout
        elapsed = time.perf_counter() - started
        wrk_cpu = (children_cpu() - wrk_before) / elapsed
        server_cpu = servers_cpu(pids) - server_before
        busy_after, total_after = machine_cpu()
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: (.*)", out)
    if errors:
        bad += sum(int(n) for n in re.findall(r"\d+", errors.group(1)))
    return Load(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        requests=requests,
        bad=bad,
        server_cpu_us=server_cpu / max(requests, 1) * 1e6,
        wrk_cpu=wrk_cpu,
        busy=(busy_after - busy_before) / max(total_after - total_before, 1),
    )


# --- the server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def roles(args: argparse.Namespace) -> list[list[str]]:
    """The `serve` arguments of each process: one with every role, or projections + N api."""
    if args.api_processes < 1:
        return [[]]
    return [["--role", "projections"]] + [["--role", "api"]] * args.api_processes


@contextlib.contextmanager
def server(url: DatabaseUrl, args: argparse.Namespace) -> Iterator[tuple[str, list[int]]]:
    """`iotledger serve` on this database (see `roles`); yields its base URL and pids."""
    port = free_port()
    data_dir = Path(mkdtemp())
    env = {
        **os.environ,
        "IOTLEDGER_DATABASE_URL": str(url),
        "IOTLEDGER_MQTT_URL": args.mqtt_url,
        "IOTLEDGER_PORT": str(port),
        "IOTLEDGER_MQTT_TOPIC": f"bench-{uuid.uuid4().hex[:10]}",
        "IOTLEDGER_JWT_SECRET": uuid.uuid4().hex,
        "IOTLEDGER_DATA_DIR": str(data_dir),
        "IOTLEDGER_COOKIE_SECURE": "false",
        "IOTLEDGER_REUSE_PORT": "true",
    }
    iotledger = str(Path(sys.executable).with_name("iotledger"))
    if args.api_processes > 0:
        subprocess.run([iotledger, "migrate"], env=env, check=True, capture_output=True)
    processes: list[subprocess.Popen[bytes]] = []
    base = f"http://127.0.0.1:{port}"
    try:
        with contextlib.ExitStack() as logs:
            for n, role in enumerate(roles(args)):
                log = logs.enter_context((data_dir / f"serve-{n}.log").open("w"))
                processes.append(
                    subprocess.Popen([iotledger, "serve", *role], env=env, stdout=log, stderr=log)
                )
            wait_until_serving(base, processes, data_dir)
            yield base, [process.pid for process in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def wait_until_serving(base: str, processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if any(process.poll() is not None for process in processes):
            raise RuntimeError(f"an iotledger serve process exited; see {logs}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("iotledger serve did not answer /health within 60 s")
        time.sleep(0.2)
    time.sleep(1)  # the other api processes, started at the same moment


def sign_up(base: str) -> tuple[str, str]:
    """A user and a device of theirs: (access token, device id)."""
    name = f"bench{uuid.uuid4().hex[:8]}"
    email, password = f"{name}@example.com", "bench-secret"
    with httpx.Client(base_url=base, timeout=30) as client:
        client.post(
            "/api/v1/auth/register",
            json={"username": name, "email": email, "password": password},
        ).raise_for_status()
        login = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        token = login.json()["access_token"]
        device = client.post(
            "/api/v1/devices",
            json={"name": "bench device", "device_type": "sensor"},
            headers={"Authorization": f"Bearer {token}"},
        )
        device.raise_for_status()
        for n in range(DEVICES_LISTED - 1):
            client.post(
                "/api/v1/devices",
                json={"name": f"listed {n}", "device_type": "sensor"},
                headers={"Authorization": f"Bearer {token}"},
            ).raise_for_status()
        return token, device.json()["id"]


# --- storing readings through the engine -----------------------------------------------


async def submit_all(services: App, cmds: list[RecordReading], submitters: int, chunk: int) -> int:
    """Every submitter takes chunks until all are in; the last position."""
    chunks = iter(range(0, len(cmds), chunk))
    last = 0

    async def submitter() -> None:
        nonlocal last
        for at in chunks:
            outcomes = await services.recording.record(cmds[at : at + chunk])
            last = max(last, outcomes[-1].position)

    await asyncio.gather(*(submitter() for _ in range(submitters)))
    return last


async def store(services: App, device: uuid.UUID, args: argparse.Namespace) -> int:
    """`--stored` readings through the ingest, in chunks; the last position."""
    others = [uuid.uuid4() for _ in range(args.devices - 1)]
    devices = [device, *others]
    start = datetime.now(UTC) - timedelta(days=30)
    last = 0
    batch, submitters, chunk = 50_000, 32, 100
    for first in range(0, args.stored, batch):
        cmds = [
            RecordReading(
                device_id=devices[n % len(devices)],
                telemetry_type="environment" if n % 2 else "power",
                payload={"temperature": 15 + n % 150 / 10, "humidity": n % 100},
                recorded_at=start + timedelta(milliseconds=n),
                by="device:bench",
                key=str(n),
            )
            for n in range(first, min(first + batch, args.stored))
        ]
        last = max(last, await submit_all(services, cmds, submitters, chunk))
    return last


def store_readings(url: DatabaseUrl, device: uuid.UUID, args: argparse.Namespace) -> float:
    """Readings/s from the first submit until the server's projection applied the last."""
    settings = Settings(database_url=url, data_dir=Path(mkdtemp()), jwt_secret="bench")
    services = build(settings, url)
    try:
        with Queryable(url) as watch:
            started = time.perf_counter()
            last = asyncio.run(store(services, device, args))
            print(f"  submitted {args.stored:,}; waiting for the projection", flush=True)
            done = watch.wait_for(last, timeout=1800)
    finally:
        services.close()
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    with psycopg.connect(str(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) readings")  # what autovacuum would do soon enough
        # ... and the checkpointer: flushing the load's dirty pages stalls whatever reads
        # the disk meanwhile, the load's aftermath rather than the query's own time.
        conn.execute("CHECKPOINT")
    return int(args.stored) / (done - started)


def readings_of(url: DatabaseUrl, timeout: float = 60) -> int:
    """The readings table's rows, once the readings projection has applied the whole log
    (it applies a steady stream in batches 50 ms apart, so it may still be a batch behind)."""
    caught_up = (
        "SELECT coalesce((SELECT position FROM projection_tracking WHERE name = 'readings'), 0)"
        " >= (SELECT coalesce(max(notification_id), 0) FROM iotledger_events)"
    )
    deadline = time.monotonic() + timeout
    with psycopg.connect(str(url), autocommit=True) as conn:
        while not _one(conn, caught_up) and time.monotonic() < deadline:
            time.sleep(0.05)
        return int(_one(conn, "SELECT count(*) FROM readings"))


def _one(conn: psycopg.Connection[Any], query: LiteralString) -> Any:
    row = conn.execute(query).fetchone()
    return row[0] if row else None


# --- the run -------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> Figures:
    figures = Figures()
    with database(args) as url:
        print(f"database {url.redacted()}", flush=True)
        figures.copy = measure_copy_baseline(url, args.copy_rows)
        print(f"baseline COPY: {figures.copy:,.0f} rows/s", flush=True)
        with server(url, args) as (base, pids):
            token, device = sign_up(base)
            path = f"/api/v1/devices/{device}/telemetry"
            figures.health = wrk(f"{base}/health", args, pids)
            print(f"GET /health: {figures.health.rps:,.0f} req/s", flush=True)
            script = POST_SCRIPT % {"token": token, "path": path, "batch": args.batch}
            figures.post = wrk(f"{base}{path}", args, pids, script)
            figures.posted_stored = readings_of(url)
            print(
                f"POST telemetry: {figures.post.rps:,.0f} req/s, {args.batch} readings each, "
                f"{figures.posted_stored:,} readings stored",
                flush=True,
            )
            figures.store_rate = store_readings(url, uuid.UUID(device), args)
            figures.stored = readings_of(url)
            print(f"stored {figures.stored:,} readings ({figures.store_rate:,.0f}/s)", flush=True)
            figures.get_health = wrk(f"{base}/health", args, pids)
            get = GET_SCRIPT % {"token": token}
            figures.get = wrk(f"{base}{path}?limit=10", args, pids, get)
            print(f"GET telemetry, saturated: {figures.get.rps:,.0f} req/s", flush=True)
            pause_ms = round(args.connections * 1000 / args.get_rate)
            paced = PACED_SCRIPT % {"token": token, "pause_ms": pause_ms}
            figures.get_steady = wrk(f"{base}{path}?limit=10", args, pids, paced)
            print(f"GET telemetry, steady: p99 {figures.get_steady.p99_ms:.1f} ms", flush=True)
            figures.get_device = wrk(f"{base}/api/v1/devices/{device}", args, pids, get)
            print(f"GET /devices/{{id}}: {figures.get_device.rps:,.0f} req/s", flush=True)
            figures.list_devices = wrk(f"{base}/api/v1/devices?limit=10", args, pids, get)
            print(f"GET /devices?limit=10: {figures.list_devices.rps:,.0f} req/s", flush=True)
    return figures


def post_figures(figures: Figures, batch: int) -> tuple[str, str]:
    """Beside the POST phase, and its verdict: requests/s against /health's, or (batches)
    readings/s against the COPY baseline's rows/s."""
    post, ok = figures.post, not figures.post.bad
    if batch == 1:
        met = ok and post.rps >= TARGETS["post_rps"]
        target = f">= {TARGETS['post_rps']:,.0f} req/s"
        return f"{post.rps / figures.health.rps:.0%} of /health req/s", verdict(met, target)
    rate = post.rps * batch
    met = ok and rate >= BATCHED_TARGET
    beside = f"{rate:,.0f} readings/s, {rate / figures.copy:.0%} of COPY"
    return beside, verdict(met, f">= {BATCHED_TARGET:,.0f} readings/s")


def device_reads(figures: Figures) -> tuple[tuple[str, Load], ...]:
    return (
        ("GET /devices/{id}", figures.get_device),
        ("GET /devices?limit=10", figures.list_devices),
    )


def device_figures(run: Load, health: Load) -> tuple[str, str]:
    """Beside a device read: its share of /health's rate, and the server's CPU a request."""
    beside = f"{run.rps / health.rps:.0%} of /health req/s, {run.server_cpu_us:,.0f} us CPU"
    met = run.rps >= TARGETS["device_rps"] and not run.bad
    return beside, verdict(met, f">= {TARGETS['device_rps']:,.0f} req/s")


def report(figures: Figures, args: argparse.Namespace) -> str:
    c = args.connections
    h, post, gh, get = figures.health, figures.post, figures.get_health, figures.get
    steady = figures.get_steady
    each = f", {args.batch} readings each" if args.batch > 1 else ""

    def load(name: str, run: Load, beside: str, target: str) -> tuple[str, str, str, str]:
        bad = f", {run.bad:,} failed" if run.bad else ""
        measured = f"{run.rps:,.0f} req/s, p50 {run.p50_ms:.1f} / p99 {run.p99_ms:.1f} ms{bad}"
        return (name, measured, beside, target)

    rows = [
        ("baseline: raw binary COPY", f"{figures.copy:,.0f} rows/s", "", ""),
        load(f"baseline: GET /health, {c} conns (before POST)", h, "", ""),
        load(f"POST telemetry, {c} conns{each}", post, *post_figures(figures, args.batch)),
        (
            f"stored through the engine ({figures.stored:,} readings in all)",
            f"{figures.store_rate:,.0f} readings/s",
            f"{figures.store_rate / figures.copy:.0%} of COPY",
            "",
        ),
        load(f"baseline: GET /health, {c} conns (before GET)", gh, "", ""),
        load(
            f"GET telemetry?limit=10, {c} conns, saturated",
            get,
            f"{get.rps / gh.rps:.0%} of /health req/s",
            "",
        ),
        load(
            f"GET telemetry?limit=10, {c} conns, steady {args.get_rate:,}/s",
            steady,
            f"p99 {steady.p99_ms - gh.p99_ms:+.1f} ms over saturated /health",
            verdict(steady.p99_ms < TARGETS["get_p99_ms"] and not steady.bad, "p99 < 25 ms"),
        ),
        *(
            load(f"{name}, {c} conns, saturated", run, *device_figures(run, gh))
            for name, run in device_reads(figures)
        ),
    ]
    header = ("figure", "measured", "beside baseline", "target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = [fmt(header, widths), fmt(tuple("-" * w for w in widths), widths)]
    lines.extend(fmt(row, widths) for row in rows)
    lines.append("")
    cpu_header = ("phase", "server CPU per request", "wrk CPU", "machine busy")
    cpu_rows = [
        (name, f"{run.server_cpu_us:,.0f} us", f"{run.wrk_cpu:.2f} cores", f"{run.busy:.0%}")
        for name, run in (
            ("GET /health (before POST)", h),
            ("POST telemetry", post),
            ("GET /health (before GET)", gh),
            ("GET telemetry?limit=10, saturated", get),
            (f"GET telemetry?limit=10, steady {args.get_rate:,}/s", steady),
            *device_reads(figures),
        )
    ]
    widths = [max(len(row[i]) for row in [cpu_header, *cpu_rows]) for i in range(4)]
    lines += [fmt(cpu_header, widths), fmt(tuple("-" * w for w in widths), widths)]
    lines.extend(fmt(row, widths) for row in cpu_rows)
    lines.append("")
    lines.append(
        f"POST: {post.requests:,} answered, readings table held {figures.posted_stored:,} after"
    )
    return "\n".join(lines)


def main() -> None:
    args = parser().parse_args()
    print(f"serve processes: {' + '.join(' '.join(r) or 'every role' for r in roles(args))}")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    figures = measure(args)
    print()
    print(report(figures, args))


if __name__ == "__main__":
    main()
