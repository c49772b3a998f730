"""The progress of a long command (`projections rebuild`), as its reader sees it best:
on a terminal, one bar redrawn in place with the rate and the time left; into a file or
a pipe (a log collector, CI), a plain line every few seconds and one at the end."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Call it with (name, done, total) as often as there is news."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = sys.stderr if stream is None else stream
        self._terminal = self._stream.isatty()
        self._every = every
        self._clock = clock
        self._name = ""
        self._started = self._shown = 0.0

    def __call__(self, name: str, done: int, total: int) -> None:
        now = self._clock()
        if name != self._name:
            self._name, self._started, self._shown = name, now, -float("inf")
        finished = done >= total
        if not (self._terminal or finished or now - self._shown >= self._every):
            return
        self._shown = now
        text = _describe(name, done, total, now - self._started)
        if self._terminal:
            bar = _bar(1.0 if total == 0 else min(done / total, 1.0))
            print(f"\r{bar} {text}", end="\n" if finished else "", file=self._stream, flush=True)
        else:
            print(text, file=self._stream, flush=True)


def _bar(fraction: float, width: int = 30) -> str:
    filled = int(width * fraction)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _describe(name: str, done: int, total: int, elapsed: float) -> str:
    fraction = 1.0 if total == 0 else min(done / total, 1.0)
    rate = done / elapsed if elapsed > 0 else 0.0
    if done >= total:
        left = "done"
    elif rate > 0:
        left = f"{(total - done) / rate:.0f}s left"
    else:
        left = "time left unknown"
    return f"{name:<16} {fraction:6.1%} {done}/{total} {rate:,.0f} events/s {left}"
