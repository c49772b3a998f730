"""Batched look-ups: many callers, one query per round, never an answer older than the ask."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection

import pytest

from iotledger.adapters.postgres.lookup import BatchedLookup


class Table:
    """Rows a blocking query reads, and a record of every query."""

    def __init__(self, rows: dict[int, str]) -> None:
        self.rows = rows
        self.queries: list[list[int]] = []
        self.gate: threading.Event | None = None

    def fetch(self, keys: Collection[int]) -> dict[int, str]:
        self.queries.append(sorted(keys))
        found = {k: self.rows[k] for k in keys if k in self.rows}  # the query's snapshot
        if self.gate is not None:
            self.gate.wait(5)  # ... whose answer is still on its way
        return found


def test_callers_of_one_moment_share_one_query_and_each_gets_its_own_row() -> None:
    table = Table({n: f"row {n}" for n in range(0, 20, 2)})
    lookup = BatchedLookup(table.fetch)

    async def main() -> list[str | None]:
        return await asyncio.gather(*(lookup.get(n % 10) for n in range(50)))

    answers = asyncio.run(main())
    assert answers == [f"row {n % 10}" if n % 2 == 0 else None for n in range(50)]
    assert table.queries == [list(range(10))]


def test_a_caller_never_gets_the_answer_of_a_query_that_was_out_before_it_asked() -> None:
    table = Table({1: "before"})
    table.gate = threading.Event()
    lookup = BatchedLookup(table.fetch)

    async def main() -> tuple[str | None, str | None]:
        early = asyncio.ensure_future(lookup.get(1))
        while not table.queries:  # the first query is out, held at the gate
            await asyncio.sleep(0.001)
        table.rows[1] = "after"  # a write acknowledged before the second caller asks
        late = asyncio.ensure_future(lookup.get(1))
        await asyncio.sleep(0.01)
        assert table.gate is not None
        table.gate.set()
        return await early, await late

    assert asyncio.run(main()) == ("before", "after")
    assert table.queries == [[1], [1]]


def test_a_failed_query_fails_its_callers_and_the_next_round_asks_again() -> None:
    table = Table({7: "seven"})
    failures = [RuntimeError("connection lost")]

    def flaky(keys: Collection[int]) -> dict[int, str]:
        if failures:
            raise failures.pop()
        return table.fetch(keys)

    lookup = BatchedLookup(flaky)

    async def main() -> str | None:
        outcomes = await asyncio.gather(lookup.get(7), lookup.get(7), return_exceptions=True)
        assert [str(o) for o in outcomes] == ["connection lost"] * 2
        return await lookup.get(7)

    assert asyncio.run(main()) == "seven"


def test_each_event_loop_has_rounds_of_its_own() -> None:
    table = Table({1: "one"})
    lookup = BatchedLookup(table.fetch)
    for _ in range(3):  # a loop that closed mid-round would otherwise wedge the next one
        assert asyncio.run(lookup.get(1)) == "one"
    with pytest.raises(RuntimeError):
        lookup.get(1).send(None)  # outside any loop: refused, not queued
