"""What the simulator shows: a live line while it runs, a summary at the end.

On a terminal the live line is rewritten in place twice a second; anywhere else (a log,
a pipe, CI) it is a plain line every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TextIO

from iotledger.simulator.device import Tally
from iotledger.simulator.tasks import beside

TERMINAL_EVERY = 0.5
PLAIN_EVERY = 5.0


def live_line(tally: Tally, seconds: float, rate: float) -> str:
    return (
        f"{seconds:6.1f} s  sent {tally.sent:,} ({rate:,.0f}/s)  "
        f"broker-acked {tally.acknowledged:,}  failed {tally.failed:,}  "
        f"queryable {tally.queryable:,}  "
        f"commands {tally.commands_answered:,}/{tally.commands_received:,} acked"
    )


@contextlib.asynccontextmanager
async def live(tally: Tally, out: TextIO) -> AsyncIterator[None]:
    """The live line, from entering the block until it ends."""
    terminal = out.isatty()
    try:
        async with beside(_show(tally, out, terminal, time.monotonic())):
            yield
    finally:
        if terminal:
            out.write("\n")
            out.flush()


async def _show(tally: Tally, out: TextIO, terminal: bool, started: float) -> None:
    every = TERMINAL_EVERY if terminal else PLAIN_EVERY
    sent = 0
    while True:
        await asyncio.sleep(every)
        line = live_line(tally, time.monotonic() - started, (tally.sent - sent) / every)
        sent = tally.sent
        out.write(f"\r\x1b[K{line}" if terminal else f"{line}\n")
        out.flush()


@dataclass(frozen=True)
class Outcome:
    devices: int
    rate: float
    seconds: float
    """How long readings were sent."""
    settled: float | None
    """Seconds after the last reading until every acknowledged one was queryable; None: never."""
    waited: float
    interrupted: bool


def summary(tally: Tally, outcome: Outcome) -> str:
    sent_rate = tally.sent / outcome.seconds if outcome.seconds > 0 else 0.0
    missing = tally.acknowledged - tally.queryable
    if outcome.settled is not None:
        verdict = f"every acknowledged reading queryable, {outcome.settled:.1f} s after the last"
    else:
        verdict = f"{missing:,} acknowledged readings NOT queryable after {outcome.waited:.0f} s"
    rows = [
        ("devices", f"{outcome.devices:,}", ""),
        ("ran", f"{outcome.seconds:.1f} s", "interrupted" if outcome.interrupted else ""),
        ("readings sent", f"{tally.sent:,}", f"{sent_rate:,.1f}/s of {outcome.rate:,.0f}/s asked"),
        ("acknowledged by the broker", f"{tally.acknowledged:,}", ""),
        ("not acknowledged", f"{tally.failed:,}", ""),
        ("queryable through the API", f"{tally.queryable:,}", verdict),
        ("commands received", f"{tally.commands_received:,}", ""),
        ("commands acknowledged", f"{tally.commands_answered:,}", "executed"),
    ]
    lines = [f"  {name:<28}{value:>12}  {note}".rstrip() for name, value, note in rows]
    return "\n".join(["summary:", *lines])
