"""The one place iotledger relies on a private part of Litestar: how it resolves the
dependencies a handler declares.

Litestar (2.x, `litestar._kwargs.kwargs_model.KwargsModel.resolve_dependencies`) resolves
the dependencies that sit at the same depth concurrently, each in a task of an anyio
task group, whenever there is more than one. iotledger's dependencies are parts made once
(`api.deps.constant`) and the caller, read from a header on the loop: none of them waits
on anything, so the task group is pure cost: about 150 µs of CPU a request for a handler
that declares a part and the `principal` (every signed-in endpoint declares at least
that), against 70 µs for the whole rest of Litestar's work on it (docs/performance.md).

`resolve_dependencies_in_turn` resolves them one after another instead, in the order
Litestar's own batches give (a dependency after the ones it depends on), in the request's
own task. `tests/integration/test_litestar_private.py` pins what this relies on.
"""

from __future__ import annotations

from typing import Any

from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.connection import ASGIConnection


async def _in_turn(
    self: KwargsModel, connection: ASGIConnection[Any, Any, Any, Any], kwargs: dict[str, Any]
) -> DependencyCleanupGroup:
    cleanup_group = DependencyCleanupGroup()
    for batch in self.dependency_batches:
        for dependency in batch:
            await resolve_dependency(dependency, connection, kwargs, cleanup_group)
    return cleanup_group


def resolve_dependencies_in_turn() -> None:
    """From now on, every Litestar application of the process resolves a request's
    dependencies one after another, in the request's task."""
    KwargsModel.resolve_dependencies = _in_turn  # type: ignore[method-assign]
