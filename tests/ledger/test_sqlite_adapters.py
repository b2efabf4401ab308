"""The SQL ledger binds ``None`` and ``bool`` through registered ``sqlite3`` adapters.

Python 3.11's ``sqlite3`` binds exact ``int``, ``float``, ``str`` and ``bytearray``
parameters directly; ``None`` and ``bool`` go through its adapter protocol, which (no adapter
registered) builds and discards a formatted AttributeError per parameter: about 3,000
instructions for every unset field of a state row a publish writes. ``core.ledger.tables``
registers adapters that bind the same values; these tests pin that they are registered and
that what is stored and read back is unchanged (NULL for ``None``, 1 and 0 for a bool).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import core.ledger.tables  # noqa: F401  (registers the adapters)
from core.ledger.sql import SqlLedger
from core.model import Action, Cmd, Trans
from core.schema import parse_project

SCHEMA = """
[project]
name = "adapters"

[t.rec.fields]
name = { type = "str", required = true }
ok = { type = "bool" }
n = { type = "int" }
note = { type = "text" }
"""


def test_none_and_bool_have_registered_adapters() -> None:
    for typ in (type(None), bool):
        assert (typ, sqlite3.PrepareProtocol) in sqlite3.adapters


def test_values_bound_through_the_adapters_are_stored_as_before() -> None:
    db = sqlite3.connect(":memory:")
    row = db.execute("SELECT ?, typeof(?), ?, typeof(?), ?, typeof(?)",
                     (None, None, True, True, False, False)).fetchone()
    assert row == (None, "null", 1, "integer", 0, "integer")


def test_publish_with_unset_fields_and_bools_reads_back(tmp_path: Path) -> None:
    project = parse_project(SCHEMA)
    url = f"sqlite:///{tmp_path / 'l.db'}"
    led = SqlLedger(url, project)
    res = led.publish_many([
        (Trans((Action("t.rec", "a", Cmd.NEW, {"name": "x", "ok": True}),)), "u"),
        (Trans((Action("t.rec", "b", Cmd.NEW, {"name": "y", "ok": False, "n": 3}),)), "u"),
        (Trans((Action("t.rec", "c", Cmd.NEW, {"name": "z"}),)), "u"),
    ])
    assert all(not isinstance(r, Exception) for r in res), res
    led.close()
    led = SqlLedger(url, project)
    assert led.state("t.rec", "a") == {"name": "x", "ok": True, "n": None, "note": None}
    assert led.state("t.rec", "b") == {"name": "y", "ok": False, "n": 3, "note": None}
    assert led.state("t.rec", "c") == {"name": "z", "ok": None, "n": None, "note": None}
    led.close()
    raw = sqlite3.connect(tmp_path / "l.db")
    assert raw.execute('SELECT "ok", typeof("ok"), typeof("n") FROM st_t_rec ORDER BY key'
                       ).fetchall() == [(1, "integer", "null"), (0, "integer", "integer"),
                                        (None, "null", "null")]
