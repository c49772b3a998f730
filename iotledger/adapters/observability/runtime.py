"""Interpreter settings for an iotledger process, applied once by the composition root."""

from __future__ import annotations

import gc

YOUNG_COLLECTION_THRESHOLD = 50_000


def tune_collector() -> None:
    """Collect reference cycles after 50,000 new container objects instead of 700.

    Reading the log makes a dict, a payload, an event object and a few tuples per
    event, thousands per batch, all alive until the batch is written. With the
    default threshold the cycle collector ran every few hundred events and kept
    rescanning live batches: measured here, it took a third of a replay's time.
    Objects without cycles are still freed at once by reference counting; only
    cyclic garbage waits a little longer.
    """
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


def freeze_startup_objects() -> None:
    """Leave everything made so far (modules, the app, its routes) out of collections.

    A full collection walked every object of the process, the long-lived ones
    included, and stalled whatever request was running: tens of milliseconds, seen
    as the tail of a steady load. Objects made later are collected as before.
    """
    gc.collect()
    gc.freeze()
