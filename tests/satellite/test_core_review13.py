"""Core review 13: the first writable open of a directory or ledger made before session 13
must not fail, nor skip an upgrade, because of session 13's own upgrade steps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.ledger.sql import SqlLedger
from core.ledger.tables import LEDGER_FORMAT
from core.satellite.order import KEY_INDEX, OLD_KEY_INDEX
from core.satellite.satellite import Satellite
from core.schema import Project
from tests.satellite.test_int_key_order import NUMERIC, int_project, synced
from tests.satellite.test_int_keys import ITEM

__all__ = ["int_project"]  # a fixture


async def test_a_key_order_index_not_made_leaves_the_replica_working(
        tmp_path: Path, int_project: Project) -> None:
    """The key-order index of session 13 could not be built (here: its name is taken, as a
    nearly full disk makes the build fail): the open still works, pending edits can be made,
    the old index stays until the new one is there, and the next open makes it."""
    sat = await synced(tmp_path / "a", int_project)
    table = sat.replica.ledger.tables.state(ITEM).table.name
    db = sat.replica.path
    sat.close()
    new, old = KEY_INDEX.format(table=table), OLD_KEY_INDEX.format(table=table)
    con = sqlite3.connect(db)
    try:  # a replica of session 12: the old index, not the new one; the new name taken
        con.execute(f'DROP INDEX "{new}"')
        con.execute(f'CREATE INDEX "{old}" ON "{table}" (key)')
        con.execute(f'CREATE TABLE "{new}" (x)')
        con.commit()
    finally:
        con.close()
    sat = Satellite(tmp_path / "a", int_project)  # raised before: the whole open failed
    try:
        assert sat.confirmed_keys(ITEM) == NUMERIC
        assert sat.new_key(ITEM) == "1002"
    finally:
        sat.close()
    con = sqlite3.connect(db)
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert old in names and new not in names  # the old one kept
        con.execute(f'DROP TABLE "{new}"')  # space again
        con.commit()
    finally:
        con.close()
    Satellite(tmp_path / "a", int_project).close()
    con = sqlite3.connect(db)
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert new in names and old not in names
    finally:
        con.close()


def test_a_ledger_older_than_ids_gets_its_id_and_format_at_one_open(
        tmp_path: Path, project: Project) -> None:
    """A ledger from before ledger ids (and formats): the first writer's open records both
    (the format's update took the id's place, so the first run served without an id)."""
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    SqlLedger(url, project).close()
    con = sqlite3.connect(tmp_path / "hub.sqlite")
    try:
        con.execute("UPDATE evt_meta SET ledger_id = NULL, fmt = NULL")
        con.commit()
    finally:
        con.close()
    led = SqlLedger(url, project)
    try:
        assert led.ledger_id
    finally:
        led.close()
    con = sqlite3.connect(tmp_path / "hub.sqlite")
    try:
        assert con.execute("SELECT fmt, ledger_id FROM evt_meta").fetchone() == (
            LEDGER_FORMAT, led.ledger_id)
    finally:
        con.close()
