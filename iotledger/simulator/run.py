"""`iotledger simulate`: a fleet of simulated devices against a running server.

One event loop holds every device's MQTT connection; a single pacer spreads the total
rate over the devices in turn (device k sends at k/R, k/R + N/R, ...), so a reading
costs the simulator one publish and nothing else, and 200 devices at 1000 readings/s
leave the machine to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import TextIO, TypeVar

import httpx

from iotledger.adapters.mqtt.topics import Topics
from iotledger.settings import MqttUrl
from iotledger.simulator.device import SimulatedDevice, Tally
from iotledger.simulator.interrupts import Interrupts, interrupts
from iotledger.simulator.report import Outcome, live, summary
from iotledger.simulator.server import Credentials, Server, SimulatorError
from iotledger.simulator.tasks import beside
from iotledger.simulator.verify import Verifier

T = TypeVar("T")

CONNECT_TIMEOUT = 30.0
"""Seconds for every device to be admitted by the broker and subscribed."""
TICK = 0.01
"""Longest nap of the pacer: readings due meanwhile go out together when it wakes."""
LOOK_EVERY = 1.0
LOOK_AT = 20
"""While readings are sent, every second the next 20 devices are checked (verify.py)."""
SETUP_CONCURRENCY = 8
SETTLE_INTERRUPTED = 5.0
"""Seconds to wait for readings to be queryable after a Ctrl-C (a second one stops that)."""


@dataclass(frozen=True)
class Options:
    devices: int
    rate: float
    duration: float
    url: str
    broker: MqttUrl
    topic: str | None
    username: str | None
    password: str | None
    settle: float = 30.0
    """Seconds to wait after the last reading for every acknowledged one to be queryable."""


async def simulate(options: Options, out: TextIO = sys.stdout) -> int:
    """Run the fleet; 0 when every reading the broker acknowledged became queryable."""
    # A line per device and reconnect attempt otherwise; the summary says what failed.
    logging.getLogger("iotledger.adapters.mqtt.link").setLevel(logging.ERROR)
    async with httpx.AsyncClient(base_url=options.url, timeout=10.0) as http:
        server = Server(http)
        await sign_in(server, options, out)
        topics = Topics(options.topic or await server.base_topic())
        await reachable(options.broker)
        fleet = await enrol(server, options, topics, Tally())
        say(
            out, f"{len(fleet)} devices with credentials; connecting to {options.broker.redacted()}"
        )
        async with connected(fleet, options.broker):
            return await exercise(server, fleet, options, out)


async def sign_in(server: Server, options: Options, out: TextIO) -> None:
    username = options.username or f"simulator-{secrets.token_hex(4)}"
    password = options.password or secrets.token_urlsafe(16)
    await server.sign_in(username, password, new=options.username is None)
    say(out, f"signed in to {options.url} as {username}")


async def reachable(broker: MqttUrl) -> None:
    """The broker answers at all (before any device is created for it)."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            _, writer = await asyncio.open_connection(broker.host, broker.port)
    except (OSError, TimeoutError) as e:
        raise SimulatorError(
            f"cannot reach the MQTT broker at {broker.redacted()}: {e or type(e).__name__}"
        ) from None
    writer.close()


async def enrol(
    server: Server, options: Options, topics: Topics, tally: Tally
) -> list[SimulatedDevice]:
    """Create the devices and issue each its credentials, a few requests at a time."""
    slots = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(n: int) -> Credentials:
        async with slots:
            return await server.new_device(f"simulated-{n}")

    issued = await asyncio.gather(*(one(n) for n in range(options.devices)))
    return [SimulatedDevice(c, options.broker, topics, tally) for c in issued]


@contextlib.asynccontextmanager
async def connected(fleet: Sequence[SimulatedDevice], broker: MqttUrl) -> AsyncIterator[None]:
    """Every device connected and subscribed to its commands; offline and gone at the end."""
    try:
        await asyncio.gather(*(device.link.start() for device in fleet))
        ready = await asyncio.gather(*(device.link.wait_ready(CONNECT_TIMEOUT) for device in fleet))
        if not all(ready):
            raise SimulatorError(
                f"the MQTT broker at {broker.redacted()} admitted {sum(ready)} of "
                f"{len(fleet)} devices within {CONNECT_TIMEOUT:.0f} s"
            )
        await asyncio.gather(*(device.say("online") for device in fleet))
        yield
    finally:
        await asyncio.gather(*(device.say("offline") for device in fleet if device.link.connected))
        await asyncio.gather(*(device.link.stop(grace=1.0) for device in fleet))


async def exercise(
    server: Server, fleet: Sequence[SimulatedDevice], options: Options, out: TextIO
) -> int:
    """Send for the duration (checking as it goes), then wait for the rest to be queryable."""
    tally, verifier = fleet[0].tally, Verifier(server, fleet)
    with interrupts() as interrupted:
        say(out, f"sending {options.rate:g} readings/s for {options.duration:g} s (Ctrl-C stops)")
        async with live(tally, out):
            async with beside(looking(verifier)):
                seconds = await pace(fleet, options, interrupted)
            patience = options.settle
            if interrupted.stopping:
                patience = min(patience, SETTLE_INTERRUPTED)
            settled = await timed(verifier.settle(patience, lambda: interrupted.quitting))
    outcome = Outcome(
        devices=len(fleet),
        rate=options.rate,
        seconds=seconds,
        settled=settled[1] if settled[0] else None,
        waited=settled[1],
        interrupted=interrupted.stopping,
    )
    say(out, summary(tally, outcome))
    if interrupted.stopping:
        return 130
    return 0 if settled[0] else 1


async def pace(
    fleet: Sequence[SimulatedDevice], options: Options, interrupted: Interrupts
) -> float:
    """Send `rate * duration` readings, one device after the other, on schedule; the
    seconds the sending took. Returns once every publish has its answer."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    total, sent = round(options.rate * options.duration), 0
    in_flight: set[asyncio.Task[None]] = set()
    while sent < total and not interrupted.stopping:
        due = min(total, int((loop.time() - started) * options.rate) + 1)
        for n in range(sent, due):
            task = asyncio.create_task(fleet[n % len(fleet)].send_reading())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        sent = due
        await asyncio.sleep(min(TICK, max(0.0, started + sent / options.rate - loop.time())))
    seconds = loop.time() - started
    await asyncio.gather(*in_flight)
    return seconds


async def looking(verifier: Verifier) -> None:
    """Look for queryable readings, a few devices at a time, until cancelled."""
    while True:
        await asyncio.sleep(LOOK_EVERY)
        await verifier.look(LOOK_AT)


async def timed(work: Awaitable[T]) -> tuple[T, float]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await work
    return result, loop.time() - started


def say(out: TextIO, line: str) -> None:
    out.write(f"{line}\n")
    out.flush()
