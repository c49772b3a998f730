"""What `api.litestar_private` relies on in Litestar, pinned: a request's dependencies are
resolved in its own task, one after another, each after those it depends on; a generator
dependency is still cleaned up, and a failing one still reaches the exception handlers
as itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.testing import TestClient

from iotledger.api.litestar_private import resolve_dependencies_in_turn

seen: list[str] = []


def task_name() -> str:
    task = asyncio.current_task()
    assert task is not None
    return task.get_name()


async def first() -> str:
    seen.append("first")
    return task_name()


async def second() -> str:
    seen.append("second")
    return task_name()


async def after_both(a: NamedDependency[str], b: NamedDependency[str]) -> str:
    seen.append("after_both")
    return a


def generator() -> Iterator[str]:
    yield "opened"
    seen.append("closed")


async def failing() -> str:
    raise LookupError("no such thing")


@get("/tasks")
async def tasks(
    a: NamedDependency[str],
    b: NamedDependency[str],
    c: NamedDependency[str],
    g: NamedDependency[str],
) -> dict[str, Any]:
    return {"handler": task_name(), "dependencies": [a, b, c], "g": g}


@get("/fails")
async def fails(a: NamedDependency[str], f: NamedDependency[str]) -> str:
    return f


def lookup_error(_: Request[Any, Any, Any], error: LookupError) -> Response[Any]:
    return Response({"error": str(error)}, status_code=404)


def app() -> Litestar:
    resolve_dependencies_in_turn()
    return Litestar(
        [tasks, fails],
        dependencies={
            "a": Provide(first),
            "b": Provide(second),
            "c": Provide(after_both),
            "g": Provide(generator),
            "f": Provide(failing),
        },
        exception_handlers={LookupError: lookup_error},
        logging_config=None,
    )


def test_dependencies_are_resolved_in_the_requests_task_in_turn() -> None:
    seen.clear()
    with TestClient(app()) as client:
        body = client.get("/tasks").json()
    assert body["dependencies"] == [body["handler"]] * 3
    assert seen.index("after_both") > max(seen.index("first"), seen.index("second"))
    assert body["g"] == "opened"
    assert seen[-1] == "closed"


def test_a_failing_dependency_reaches_the_exception_handlers_as_itself() -> None:
    with TestClient(app()) as client:
        response = client.get("/fails")
    assert (response.status_code, response.json()) == (404, {"error": "no such thing"})
