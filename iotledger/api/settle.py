"""Read-your-writes, written once: a reply waits until the read models the next read
uses have applied what came before it.

A write answers once the projections its caller reads next show it (`record`); a read
of readings waits instead for the head of the log (`iotledger.api.readings`), because
devices write far more often than people read. Either way the wait is `settle`: on the
projection watch, bounded by `IOTLEDGER_READ_WAIT_TIMEOUT`, and naming each projection
by its class, so that a renamed projection cannot leave a wait on a name nobody moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from iotledger.adapters.postgres.watch import ProjectionWatch
from iotledger.api.deps import off_loop
from iotledger.projections.base import Projection


class Reached(Protocol):
    """What a write returns (`Written`, a session's `Refreshed`): the position it reached."""

    @property
    def position(self) -> int: ...


C = TypeVar("C")
W = TypeVar("W", bound=Reached)


async def settle(
    watch: ProjectionWatch, position: int, *projections: type[Projection[Any]]
) -> None:
    """Returns once each of `projections` has applied the log up to `position`, or when
    the wait times out (the reply goes anyway: the write itself is committed)."""
    await watch.wait(position, *(projection.name for projection in projections))


async def record(
    watch: ProjectionWatch,
    write: Callable[[C], W],
    command: C,
    *projections: type[Projection[Any]],
) -> W:
    """Run `write` off the loop (eventsourcing blocks), then settle on what it wrote."""
    written = await off_loop(write, command)
    await settle(watch, written.position, *projections)
    return written
