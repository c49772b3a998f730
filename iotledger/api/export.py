"""Streamed exports: every row of a list, in chunks, as NDJSON or CSV, never held whole.

The handler reads the first chunk itself, so a device the caller may not see, or a
bad parameter, is answered in the dialect's error body before any byte is sent. Each
further chunk is one keyset query on a pooled connection that goes back to the pool
before the chunk is written: no transaction stays open while a slow client reads, each
statement stays within the statement timeout, and the process holds one chunk at a
time (the ASGI server's `send` waits while the socket is full). The price: an export
is not one snapshot; a reading that arrives during it, later in device time than the
export has reached, is in it.

NDJSON: one line per row, the row exactly as the dialect's list renders it. CSV: a
header row of the same fields, then one row per item; a nested value (a telemetry
payload) is one column holding its JSON text, so every payload shape fits one header;
an absent value (null) is an empty cell; quoting follows RFC 4180 (`csv` module).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Any, TypeVar

import msgspec
from litestar.response import Stream

T = TypeVar("T")
CHUNK = 5000
"""Rows per query: large enough that a query costs little per row, small enough that a
chunk is a few MB at most."""

_ndjson = msgspec.json.Encoder().encode_lines
_json = msgspec.json.Encoder().encode


class ExportFormat(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"


_MEDIA_TYPES = {ExportFormat.NDJSON: "application/x-ndjson", ExportFormat.CSV: "text/csv"}


async def chunks(
    first: Sequence[T], more: Callable[[T], Awaitable[Sequence[T]]], size: int = CHUNK
) -> AsyncIterator[Sequence[T]]:
    """`first`, then what `more` finds after the last row of each full chunk."""
    rows = first
    while rows:
        yield rows
        if len(rows) < size:
            return
        rows = await more(rows[-1])


def export_response(
    rows: AsyncIterator[Sequence[T]],
    render: Callable[[T], msgspec.Struct],
    fields: tuple[str, ...],
    fmt: ExportFormat,
    name: str,
) -> Stream:
    """A download of `rows`, each as `render` makes it (a Struct of `fields`)."""
    disposition = f'attachment; filename="{name}.{fmt.value}"'
    return Stream(
        _encoded(rows, render, fields, fmt),
        media_type=_MEDIA_TYPES[fmt],
        headers={"Content-Disposition": disposition},
    )


async def _encoded(
    rows: AsyncIterator[Sequence[T]],
    render: Callable[[T], msgspec.Struct],
    fields: tuple[str, ...],
    fmt: ExportFormat,
) -> AsyncIterator[bytes]:
    if fmt is ExportFormat.CSV:
        yield csv_lines([fields])
    async for chunk in rows:
        items = [render(row) for row in chunk]
        if fmt is ExportFormat.NDJSON:
            yield _ndjson(items)
        else:
            yield csv_lines([csv_row(item) for item in items])


def csv_row(item: msgspec.Struct) -> list[str]:
    """An item's fields as CSV cells, each value as the JSON list shows it (unquoted)."""
    return [_cell(value) for value in msgspec.to_builtins(item).values()]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _json(value).decode()


def csv_lines(rows: list[Sequence[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()
