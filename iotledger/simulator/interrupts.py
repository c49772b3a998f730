"""Ctrl-C for the simulator: once stops the sending, twice stops the waiting too.

Either way the devices disconnect and the summary is printed: what was interrupted
is said, not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    def __init__(self) -> None:
        self.count = 0

    @property
    def stopping(self) -> bool:
        """Stop sending readings."""
        return self.count >= 1

    @property
    def quitting(self) -> bool:
        """Stop waiting for readings to become queryable as well."""
        return self.count >= 2

    def interrupt(self) -> None:
        self.count += 1


@contextlib.contextmanager
def interrupts() -> Iterator[Interrupts]:
    """SIGINT and SIGTERM counted while the block runs, instead of raising."""
    loop, counted = asyncio.get_running_loop(), Interrupts()
    for signum in SIGNALS:
        loop.add_signal_handler(signum, counted.interrupt)
    try:
        yield counted
    finally:
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)
