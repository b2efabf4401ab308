"""Int-keyed topics in number order (field-team review 10, item 1): the replica's keys, the
keys and records a user sees (the app's table, ``outpost show`` and ``export``) were in the
order of the key's text (1, 10, 100, 1000, 2). Real satellites on SQLite, a real hub."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.ledger.memory import MemLedger
from core.model import Action, Cmd, Trans
from core.satellite.client import SyncClient
from core.satellite.order import KEY_INDEX, key_sort
from core.satellite.satellite import Satellite
from core.schema import Project, parse_project
from hubserver.server import Hub
from tests.satellite.test_int_keys import ITEM, SCHEMA

KEYS = ("1", "2", "3", "9", "10", "11", "20", "100", "1000", "1001", "-5")
NUMERIC = ["-5", "1", "2", "3", "9", "10", "11", "20", "100", "1000", "1001"]


@pytest.fixture
def int_project() -> Project:
    return parse_project(SCHEMA)


@contextlib.asynccontextmanager
async def many_hub(project: Project) -> AsyncIterator[Hub]:
    led = MemLedger(project)
    led.publish(Trans(tuple(Action(ITEM, k, Cmd.NEW, {"name": f"item {k}"}) for k in KEYS)),
                "office")
    async with Hub(led, port=0, anon_user="office") as h:
        yield h


async def synced(path: Path, project: Project) -> Satellite:
    sat = Satellite(path, project)
    async with many_hub(project) as hub:
        await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)
    return sat


def test_key_sort_orders_int_keys_by_number_then_text() -> None:
    ks = key_sort(True)
    assert sorted(["10", "2", "007", "7", "-1", "1"], key=ks) == ["-1", "1", "2", "007", "7",
                                                                 "10"]
    big = str(2**70)  # SQLite's CAST stops at 2**63 - 1: so does the sort (then the text)
    assert sorted([str(2**63 - 1), big, "5"], key=ks) == ["5", big, str(2**63 - 1)]
    assert sorted(["b", "a10", "a2"], key=key_sort(False)) == ["a10", "a2", "b"]


async def test_int_keys_are_in_number_order_everywhere(tmp_path: Path,
                                                       int_project: Project) -> None:
    sat = await synced(tmp_path / "a", int_project)
    assert sat.confirmed_keys(ITEM) == NUMERIC
    sat.pub([Action(ITEM, "5", Cmd.NEW, {"name": "pending five"})])
    want = ["-5", "1", "2", "3", "5", "9", "10", "11", "20", "100", "1000", "1001"]
    assert sat.keys(ITEM) == want
    assert sat.keys(ITEM, confirmed=sat.confirmed_keys(ITEM)) == want
    assert [r.key for r in sat.records(ITEM)] == want  # `outpost show` and `export`
    sat.close()


async def test_the_replica_indexes_the_number_order(tmp_path: Path,
                                                    int_project: Project) -> None:
    sat = await synced(tmp_path / "a", int_project)
    table = sat.replica.ledger.tables.state(ITEM).table.name
    db = sat.replica.path
    sat.close()
    con = sqlite3.connect(db)
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert KEY_INDEX.format(table=table) in names
        plan = " ".join(str(r) for r in con.execute(
            f'EXPLAIN QUERY PLAN SELECT key FROM "{table}" ORDER BY CAST(key AS INTEGER), key'))
        assert "TEMP B-TREE" not in plan  # read in index order, not sorted
        # a replica made before session 10 (no index) still answers, and gets it when opened
        con.execute(f'DROP INDEX "{KEY_INDEX.format(table=table)}"')
        con.commit()
    finally:
        con.close()
    sat = Satellite(tmp_path / "a", int_project)
    assert sat.confirmed_keys(ITEM) == NUMERIC
    sat.close()
    con = sqlite3.connect(db)
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert KEY_INDEX.format(table=table) in names
    finally:
        con.close()


async def test_show_and_export_list_int_keys_by_number(tmp_path: Path,
                                                       int_project: Project) -> None:
    import json

    from tests.satellite.test_cli import cli

    sat = await synced(tmp_path / "a", int_project)
    sat.close()
    rc, out, err = await cli(tmp_path / "a", "show", ITEM)
    assert rc == 0, err
    assert [r["key"] for r in json.loads(out)] == NUMERIC
    rc, out, err = await cli(tmp_path / "a", "export", ITEM, json_out=False)
    assert rc == 0, err
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == NUMERIC
