"""Garbage-collector settings for long-running Outpost processes (hub, app, ``outpost sync``).

Not decision logic: each program calls :func:`settle_heap` once, after start-up, when what is
alive is meant to live as long as the process.

Why: a full (generation 2) collection visits every object the collector tracks while holding
the GIL, so every thread waits. After start-up that is tens of thousands of objects
(SQLAlchemy, websockets, the schema; PySide6 and the first window in the app; the pending
queue in a satellite) and 45-75 ms per full collection, and the bursts of short-lived objects
of sync traffic trigger one every few requests (figures: docs/benchmarks.md, Desktop and
Sync (b)). Freezing moves what exists into a permanent generation the collector never visits
(it is still freed by reference counting; only cycles among frozen objects would stay).
"""

from __future__ import annotations

import gc

__all__ = ["GC_YOUNG", "settle_heap"]

GC_YOUNG = 10_000
"""Net allocations between young-generation collections for request-serving processes
(Python's default: 700). An ``evt.sat`` of 1,000 transactions allocates about 15,000 objects,
most freed by reference counting a moment later; with 700 the collector ran about 25 times per
request and promoted what was alive at that moment, which set off full collections."""


def settle_heap(young: int | None = None) -> None:
    """Collect, then freeze what start-up built; optionally collect young objects less often.

    Args:
        young: the young generation's threshold (e.g. :data:`GC_YOUNG`); ``None`` keeps it.
    """
    gc.collect()
    gc.freeze()
    if young is not None:
        _, g1, g2 = gc.get_threshold()
        gc.set_threshold(young, g1, g2)
