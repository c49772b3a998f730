"""What both dialects read off the wire the same way: a time given in a query.

A time in a body is decoded by its Struct (`iotledger.domain.instants.Instant`); a
time in a query string arrives as text, and is read here, to the same rule.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from iotledger.domain.errors import InvalidInput


def instant(text: str | None, name: str) -> datetime | None:
    """A time given in the query parameter `name`: RFC 3339 with its offset, or absent."""
    if text is None:
        return None
    try:
        value = msgspec.convert(text, datetime)
    except msgspec.ValidationError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidInput(f"{name} must be an RFC 3339 date-time with an offset")
    return value
