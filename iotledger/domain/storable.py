"""Text PostgreSQL can store: the rule every string of every command obeys.

The log keeps an event's state as bytes, so it takes any text; the read models
keep text in `text` and `jsonb` columns, which refuse the NUL character
(`UntranslatableCharacter`), and a lone surrogate has no UTF-8 form at all. An
event carrying either could be appended but never projected: its view would stop
at it. So the domain refuses both, in every string a command carries (field
values, and the keys and values of nested objects and arrays), whichever channel
sent it: `LedgerService.append` checks every event it saves, and a reading's
command checks its own text (readings take a road of their own into the log).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from iotledger.domain.errors import UnstorableText

_SURROGATE = re.compile("[\ud800-\udfff]")
_SEQUENCES = (list, tuple, set, frozenset)


def check_storable(value: Any, what: str) -> None:
    """UnstorableText, naming `what`, if any string anywhere in `value` is not storable.

    Readings pass here one by one at thousands a second, so the loop is kept plain.
    """
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or not (item.isascii() or _SURROGATE.search(item) is None):
                raise UnstorableText(
                    f"{what} must not contain the NUL character (\\u0000) or a lone surrogate"
                )
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, _SEQUENCES):
            pending.extend(item)
        elif isinstance(item, msgspec.Struct):
            pending.extend(msgspec.structs.astuple(item))


def check_storable_event(event: object) -> None:
    """Every attribute of a domain event, each named by its attribute."""
    for name, value in vars(event).items():
        check_storable(value, name)
