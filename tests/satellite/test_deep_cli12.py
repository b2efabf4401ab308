"""`outpost pub` and `outpost import` refuse a json value nested past the limit (session 12,
reviewer "wire"): `pub data='[[[…300…]]]'` crashed with a traceback (the satellite failed to
encode it), a CSV cell said "not valid JSON". The CLI as a subprocess, a real hub on
127.0.0.1 (SQLite ledger)."""

from __future__ import annotations

import json
from pathlib import Path

from core.ledger.sql import SqlLedger
from core.schema import MAX_NESTING, parse_project
from hubserver.server import Hub
from tests.satellite.test_cli import cli

DOC = {"project": {"name": "j"},
       "doc": {"item": {"key": "int", "fields": {"name": {"type": "str"},
                                                 "data": {"type": "json"}}}}}


def deep(n: int) -> str:
    return "[" * n + "1" + "]" * n


async def test_pub_and_import_refuse_json_nested_past_the_limit(tmp_path: Path) -> None:
    led = SqlLedger(f"sqlite:///{tmp_path / 'hub.db'}", parse_project(DOC))
    try:
        async with Hub(led) as hub:
            d = tmp_path / "sat"
            rc, _, err = await cli(d, "connect", hub.url)
            assert rc == 0, err
            for n in (MAX_NESTING + 1, 300, 5000):
                rc, out, err = await cli(d, "pub", "doc.item", "5", "new", f"data={deep(n)}")
                assert rc == 1 and out == "" and "Traceback" not in err
                assert err.startswith("outpost: field 'data': '[[[[")
                assert err.rstrip().endswith(
                    "is not JSON nested at most 100 levels deep (lists and objects; this value "
                    "nests more): flatten it")
            csv = tmp_path / "deep.csv"
            csv.write_text(f'key,name,data\n9,x,"{deep(300)}"\n10,y,"{deep(MAX_NESTING)}"\n')
            rc, _, err = await cli(d, "import", "doc.item", str(csv))
            assert rc == 1 and "Traceback" not in err
            assert "line 2, column data: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[…' is not " \
                   "JSON nested at most 100 levels deep: flatten it" in err
            assert "line 3" not in err  # at the limit: fine
            rc, out, err = await cli(d, "status")
            assert rc == 0 and json.loads(out)["pending"] == 0  # nothing was queued
            rc, out, err = await cli(d, "pub", "doc.item", "5", "new",
                                     f"data={deep(MAX_NESTING)}")
            assert rc == 0, err
            rc, out, err = await cli(d, "sync", "--once", "--timeout", "20")
            assert rc == 0, err
        assert led.state("doc.item", "5") == {"name": None, "data": json.loads(deep(MAX_NESTING))}
    finally:
        led.close()
