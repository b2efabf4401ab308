"""A real hub on 127.0.0.1 in a background thread (its own event loop), for synchronous tests
(Hypothesis drives plain functions) and for measuring the hub's process from outside."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.ledger.sql import SqlLedger
from core.schema import Project
from hubserver.auth import Users
from hubserver.limits import Limits
from hubserver.server import Hub


@contextmanager
def hub_thread(db: Path, project: Project, *, limits: Limits | None = None,
               users: Users | None = None, origins: list[str] | None = None) -> Iterator[Hub]:
    """Run a hub until the block exits; yields the started :class:`Hub` (``hub.url``)."""
    loop = asyncio.new_event_loop()
    ledger = SqlLedger(f"sqlite:///{db}", project)
    hub = Hub(ledger, limits=limits, users=users, origins=origins, close_ledger=True)
    started = threading.Event()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        await hub.start()
        started.set()
        await stop.wait()
        await hub.stop()

    t = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    t.start()
    if not started.wait(30):
        raise RuntimeError("the hub did not start within 30 s")
    try:
        yield hub
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        t.join(60)
        if not t.is_alive():
            loop.close()
