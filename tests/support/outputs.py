"""A failing test shows what the processes it ran printed.

pytest captures the test's own output, not that of the `iotledger` processes it starts:
theirs goes to a pipe a thread drains, or to a file. Each such process is watched here,
and this plugin (`-p tests.support.outputs`, in pyproject.toml) adds the output of every
watched process to the report of a test that fails, one section each. A process is
forgotten once its test is over and it has exited; one that a module's fixture keeps
running stays watched, and shows with each of that module's failures.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Watched:
    name: str
    output: Callable[[], str]
    running: Callable[[], bool]


_watched: dict[int, Watched] = {}
SHOWN = 100_000
"""Characters of each process's output a report shows at most: the last ones, where the
failure is."""


def watch(key: object, name: str, output: Callable[[], str], running: Callable[[], bool]) -> None:
    """Show `output()` with the test that fails while `key`'s process is watched (a process
    started again under the same key replaces the one before)."""
    _watched[id(key)] = Watched(name, output, running)


def sections() -> list[tuple[str, str]]:
    return [(f"output of {w.name}", tail(w.output())) for w in _watched.values()]


def tail(output: str) -> str:
    if not output:
        return "(nothing)\n"
    if len(output) <= SHOWN:
        return output
    return f"(the first {len(output) - SHOWN} characters left out)\n{output[-SHOWN:]}"


def forget_exited() -> None:
    for key, watched in list(_watched.items()):
        if not watched.running():
            del _watched[key]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport() -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        report.sections.extend(sections())
    if report.when == "teardown":
        forget_exited()
    return report
