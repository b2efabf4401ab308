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
from core.satellite.order import KEY_INDEX, OLD_KEY_INDEX, key_order_sql, key_sort
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
    big = str(2**70)  # past SQLite's CAST (it stops at 2**63 - 1): still by number
    assert sorted([str(2**63 - 1), big, "5"], key=ks) == ["5", str(2**63 - 1), big]
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
            f'EXPLAIN QUERY PLAN SELECT key FROM "{table}" ORDER BY {key_order_sql(True)}'))
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


BEYOND = [str(-(10**30)), str(-(2**64)), str(-(2**63) - 1), str(-(2**63)), "-5", "1", "7",
          str(2**63 - 2), str(2**63 - 1), str(2**63), str(2**64), "99999999999999999999",
          str(10**30)]
"""Int keys in number order, some beyond 64 bits (hubs took them before session 12)."""


async def test_keys_beyond_64_bits_a_hub_took_before_are_listed_by_number(
        tmp_path: Path, int_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """Session 12's note: `outpost show` listed 2**64 before 2**63 - 1 and 10**30 before
    2**64 (SQLite's CAST stops at 2**63 - 1, then the text decided). The replica's order
    (its index), the pending view's and the CLI's agree, by number; a replica with the
    index of sessions 10-12 gets the new one at its writable open."""
    import json

    from core.schema import Model
    from tests.satellite.test_cli import cli

    led = MemLedger(int_project)
    old = Model.check_key
    with monkeypatch.context() as mp:  # as a hub before session 12 took them
        mp.setattr(Model, "check_key", lambda self, key, new=False: old(self, key))
        led.publish(Trans(tuple(Action(ITEM, k, Cmd.NEW, {"name": f"item {k}"})
                                for k in reversed(BEYOND))), "office")
    d = tmp_path / "a"
    sat = Satellite(d, int_project)
    async with Hub(led, port=0, anon_user="office") as hub:
        await SyncClient(sat, hub.url, rnd=random.Random(0)).sync_once(10)
    assert sorted(BEYOND, key=key_sort(True)) == BEYOND
    assert sat.confirmed_keys(ITEM) == BEYOND
    sat.pub([Action(ITEM, "3", Cmd.NEW, {"name": "pending"})])
    want = [*BEYOND[:6], "3", *BEYOND[6:]]
    assert sat.keys(ITEM) == want and [r.key for r in sat.records(ITEM)] == want
    table = sat.replica.ledger.tables.state(ITEM).table.name
    sat.close()
    rc, out, err = await cli(d, "show", ITEM)
    assert rc == 0, err
    assert [r["key"] for r in json.loads(out)] == want
    # a replica of session 12: its index in the old order
    con = sqlite3.connect(sat.replica.path)
    try:
        con.execute(f'DROP INDEX "{KEY_INDEX.format(table=table)}"')
        con.execute(f'CREATE INDEX "{OLD_KEY_INDEX.format(table=table)}" ON "{table}" '
                    "(CAST(key AS INTEGER), key)")
        con.commit()
    finally:
        con.close()
    sat = Satellite(d, int_project)
    assert sat.confirmed_keys(ITEM) == BEYOND
    sat.close()
    con = sqlite3.connect(sat.replica.path)
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        con.close()
    assert KEY_INDEX.format(table=table) in names
    assert OLD_KEY_INDEX.format(table=table) not in names
