"""A hub stopped while its periodic database check runs on a thread (a slow PostgreSQL, a
loaded machine) waits for that check before the ledger is closed. Before session 14 the
check's task was cancelled but its thread went on: the ledger's engine was disposed under
it, the thread then handed its connection back to the disposed pool, and that psycopg
connection stayed open until the garbage collector found it ("connection … was deleted
while still open", a ResourceWarning that failed whichever later test collected garbage:
``test_hostile_wire::test_replaced_monitors_free_their_memory`` at load ~17, session 13).
A real hub on 127.0.0.1 and a real PostgreSQL database; the ledger is our own SqlLedger
with a check that holds its connection until the test lets it go."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from typing import Any

import pytest

from core.ledger.sql import SqlLedger
from core.schema import load_project
from hubserver.server import Hub
from tests.conftest import DEMO_SCHEMA

pytestmark = pytest.mark.pg


class SlowCheck(SqlLedger):
    """A ledger whose health check holds a pooled connection until ``go`` is set."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.inside = threading.Event()
        self.go = threading.Event()
        self.done = threading.Event()

    def health(self, write: bool = False) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
                self.inside.set()
                self.go.wait(30)
        finally:
            self.done.set()


async def test_stop_waits_for_the_database_check_in_flight(fresh_pg_db: str) -> None:
    led = SlowCheck(fresh_pg_db, load_project(DEMO_SCHEMA))
    hub = Hub(led, port=0, db_check=0.05, close_ledger=True)
    await hub.start()
    try:
        assert await asyncio.to_thread(led.inside.wait, 30), "the check never ran"
    finally:
        stopping = asyncio.create_task(hub.stop())
        await asyncio.sleep(0.3)  # the stop is under way, the check still holds its connection
        led.go.set()
        await asyncio.wait_for(stopping, 60)
    done_at_stop = led.done.is_set()
    assert await asyncio.to_thread(led.done.wait, 30)  # (without the fix it ends later)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        gc.collect()
    left = [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]
    assert not left, left  # "<psycopg.Connection …> was deleted while still open"
    assert done_at_stop  # stop returned after the check, not before
