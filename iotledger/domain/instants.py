"""A time a device gives is an instant: a date-time with its offset, so it can be placed.

Every edge decodes a device's time as `Instant` (the REST bodies of both dialects, the
MQTT messages), so a clock without an offset is refused as the message is read, before
a command is built; the domain checks it again (`check_recorded_at`) whoever built it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec

Instant = Annotated[datetime, msgspec.Meta(tz=True)]
"""A date-time with its offset: a device's clock without one cannot be placed."""


def lambda_time(moment: datetime) -> datetime:
    """Whole seconds in UTC, as the Lambda IoT Core document writes times
    (`2026-01-14T10:00:00Z`): in its answers and in the messages it sends devices."""
    return moment.astimezone(UTC).replace(microsecond=0)
