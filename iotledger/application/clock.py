"""The one clock: the time a command is stamped with, wherever it is built.

The domain has no clock (its methods take `at`, so tests and hypothesis choose the
time); the edges that build commands (REST, MQTT) and the policies that act on their
own (dispatch, device checks, retention) all ask here.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
