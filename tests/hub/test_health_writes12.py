"""Operator review 12: `/healthz` went back to "ok" while every publish failed, and the log's
last word was "the database works again". A PostgreSQL database that reads but refuses
writes (`default_transaction_read_only`, as a standby after a failover) passed the periodic
read check, which cleared the failure a commit had just seen; the next "failing" line was
then dropped by the repeat limit. Now a commit's failure is cleared only by a write that
works (a commit, or the check's rolled-back write while commits fail), and each change of
state is logged. A real hub on 127.0.0.1, real websockets, a real PostgreSQL database."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest
from websockets.asyncio.client import connect

from core.ledger import open_ledger
from core.schema import load_project
from hubserver.server import Hub
from tests.conftest import DEMO_SCHEMA
from tests.hub.conftest import request
from tests.hub.test_ops_review10 import _healthz

pytestmark = pytest.mark.pg


def _pub(key: str) -> dict[str, object]:
    return {"acts": [{"top": "field.site", "key": key, "cmd": "new",
                      "arg": {"name": "Ridge", "region": "X", "lat": 1}}]}


def _read_only(pg_url: str, name: str, on: bool) -> None:
    """Set the database read-only (or back) and cut its sessions, so the hub's next
    connections get the new default."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as admin:
        if on:
            admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        else:
            admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


async def test_healthz_stays_503_while_writes_fail_on_a_database_that_still_reads(
        fresh_pg_db: str, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="outpost.hub")
    name = fresh_pg_db.rsplit("/", 1)[1].split("?")[0]
    ledger = open_ledger(fresh_pg_db, load_project(str(DEMO_SCHEMA)))
    try:
        async with Hub(ledger, port=0, db_check=0.2) as hub:
            assert await _healthz(hub.url) == (200, "ok\n")
            async with connect(hub.url) as ws:
                assert "res" in await request(ws, "evt.pub", _pub("k0"))
                await asyncio.to_thread(_read_only, pg_url, name, True)
                failed = 0
                for i in range(3):  # the first may meet a cut session; bounded
                    reply = await request(ws, "evt.pub", _pub(f"k{i + 1}"), timeout=60)
                    assert "err" in reply, reply
                    failed += 1
                    if "read" in str(reply).lower():
                        break
                assert failed
                # many periodic checks (every 0.2 s) read fine: still 503 on every probe
                seen = set()
                for _ in range(15):
                    seen.add((await _healthz(hub.url))[0])
                    await asyncio.sleep(0.1)
                assert seen == {503}, seen
                stat = await request(ws, "evt.stat")
                assert stat["res"]["db"] == "unavailable", stat
                mid = [r.getMessage() for r in caplog.records]
                assert not any("the database works again" in m for m in mid), mid
                # writable again: the check's write probe says ok without a publish
                await asyncio.to_thread(_read_only, pg_url, name, False)
                for _ in range(200):  # bounded: 20 s
                    if (await _healthz(hub.url))[0] == 200:
                        break
                    await asyncio.sleep(0.1)
                assert await _healthz(hub.url) == (200, "ok\n")
                assert "res" in await request(ws, "evt.pub", _pub("k9"), timeout=60)
    finally:
        ledger.close()
    said = [r.getMessage() for r in caplog.records
            if "the database is failing" in r.getMessage()
            or "the database works again" in r.getMessage()]
    assert said and "the database is failing" in said[0], said
    assert "the database works again" in said[-1], said
    # no false "works again" between two "failing": they alternate
    assert all(("is failing" in a) != ("is failing" in b) for a, b in itertools.pairwise(said)), \
        said
