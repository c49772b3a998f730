"""One leader at a time: a leader that loses its lock stops at once, and a standby takes over."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import psycopg

from iotledger.adapters.postgres.feed import lock_key
from iotledger.adapters.postgres.leadership import Round, lead
from iotledger.settings import DatabaseUrl, parse_database_url
from tests.support.identity import unique

LONG_ROUND = 300  # beats of 0.1 s: a 30 s round, as a device check of a large fleet can be


def beating(beats: list[float]) -> Round:
    """A long round of work that notes the moment of each thing it does."""

    async def round_() -> None:
        for _ in range(LONG_ROUND):
            beats.append(time.monotonic())
            await asyncio.sleep(0.1)

    return round_


async def lock_holder(url: DatabaseUrl, name: str) -> int:
    """The backend pid of the connection that holds the advisory lock `name`."""
    query = (
        "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objid::bigint = %s"
        " AND d.datname = current_database()"
    )
    async with await psycopg.AsyncConnection.connect(str(url), autocommit=True) as conn:
        row = await (await conn.execute(query, (lock_key(name),))).fetchone()
    assert row is not None, "nobody holds the lock"
    return int(row[0])


async def terminate(url: DatabaseUrl, pid: int) -> None:
    async with await psycopg.AsyncConnection.connect(str(url), autocommit=True) as conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def fail_over(url: DatabaseUrl) -> tuple[list[float], list[float], float]:
    """Two leaders; cut the leader's lock connection. (old leader's beats, standby's, the cut)"""
    name = unique("leader")
    beats: dict[str, list[float]] = {"a": [], "b": []}
    tasks = [
        asyncio.create_task(lead(str(url), name, beating(beats[k]), 0.1, standby_wait=0.2))
        for k in beats
    ]
    try:
        while not (beats["a"] or beats["b"]):
            await asyncio.sleep(0.05)
        leader, standby = ("a", "b") if beats["a"] else ("b", "a")
        await asyncio.sleep(0.5)
        await terminate(url, await lock_holder(url, name))
        cut = time.monotonic()
        await asyncio.sleep(4)
        return beats[leader], beats[standby], cut
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_a_leader_whose_lock_connection_is_terminated_stops_and_the_standby_takes_over(
    database_url: DatabaseUrl,
) -> None:
    old, new, cut = asyncio.run(fail_over(database_url))
    assert old[-1] < cut + 2, f"the old leader worked on for {old[-1] - cut:.1f}s"
    assert new, "the standby never took over"
    assert old[-1] < new[0] < cut + 3  # never both at once, and not long without a leader


class FreezingProxy:
    """A TCP relay to PostgreSQL that can stop relaying (a network gone silent)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.pipes: set[asyncio.Task[None]] = set()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            self.pipes.add(asyncio.create_task(self.pipe(source, sink)))

    async def pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                await self.flowing.wait()
                sink.write(data)
                await sink.drain()
        sink.close()


@contextlib.asynccontextmanager
async def freezing_proxy(url: DatabaseUrl) -> AsyncIterator[tuple[FreezingProxy, DatabaseUrl]]:
    proxy = FreezingProxy(url.host, url.port)
    server = await asyncio.start_server(proxy.accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield proxy, parse_database_url(str(url).replace(f":{url.port}/", f":{port}/"))
    finally:
        server.close()
        for task in proxy.pipes:
            task.cancel()
        await asyncio.gather(*proxy.pipes, return_exceptions=True)


async def freeze_the_leader(url: DatabaseUrl) -> tuple[list[float], float]:
    """A leader whose connection goes silent. (its beats, the moment it went silent)"""
    beats: list[float] = []
    async with freezing_proxy(url) as (proxy, through_proxy):
        task = asyncio.create_task(lead(str(through_proxy), unique("leader"), beating(beats), 0.1))
        try:
            while not beats:
                await asyncio.sleep(0.05)
            proxy.flowing.clear()
            frozen = time.monotonic()
            await asyncio.sleep(3)
            return beats, frozen
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def test_a_leader_whose_lock_connection_hangs_stops_working_within_two_seconds(
    database_url: DatabaseUrl,
) -> None:
    beats, frozen = asyncio.run(freeze_the_leader(database_url))
    assert beats[-1] < frozen + 2, f"the leader worked on for {beats[-1] - frozen:.1f}s"
