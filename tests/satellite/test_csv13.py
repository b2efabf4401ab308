"""Session 13, task csv (the user review's CSV import findings): a sheet exported on a laptop
that synced later does not undo this laptop's own unsynced edit; a keyless row is a repeat
only when it equals a whole record; a row of a record this laptop has not received yet is
not made new; spreadsheet date-times ``21.11.2026 07:15`` are read. `python -m
desktop.headless` subprocesses against a real hub on 127.0.0.1, real SQLite files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from hubserver.server import Hub
from tests.satellite.test_cli import cli

SITE = "field.site"
OBS = "field.obs"


async def _fields(d: Path, top: str, key: str) -> dict[str, object]:
    rc, out, err = await cli(d, "show", top, key)
    assert rc == 0, err
    fields: dict[str, object] = json.loads(out)["fields"]
    return fields


async def _export(d: Path, path: Path, edit: dict[str, dict[str, str]] | None = None) -> str:
    """The topic exported on ``d`` to ``path``, with ``edit`` (key -> cells) applied."""
    rc, text, err = await cli(d, "export", SITE, json_out=False)
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(text)))
    for r in rows:
        r.update((edit or {}).get(r["key"], {}))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return str(path)


async def test_a_sheet_from_a_laptop_further_on_keeps_ones_unsynced_edit(
        tmp_path: Path, hub: Hub) -> None:
    """B edits notes offline (pending); A changes lat, syncs and exports; B imports A's sheet
    with the name changed in it: B's notes stay (not sent as null, said), the name is sent."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert (await cli(d, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "s3", "new", "name=Site 3", "region=North"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0
    assert (await cli(b, "pub", SITE, "s3", "mod", "notes=B: bridge washed out"))[0] == 0
    assert (await cli(a, "pub", SITE, "s3", "mod", "lat=44.4"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    sheet = await _export(a, tmp_path / "a.csv", {"s3": {"name": "Site Three"}})
    rc, out, err = await cli(b, "import", SITE, sheet)
    assert rc == 0, err
    s3 = await _fields(b, SITE, "s3")
    assert s3["notes"] == "B: bridge washed out" and s3["name"] == "Site Three"
    res = json.loads(out)
    assert res["kept_unsynced_rows"] == 1
    assert res["kept_unsynced"] == [{"line": 2, "top": SITE, "key": "s3", "fields": ["notes"]}]
    assert err.count("notes left as you changed it (your change is not synced yet") == 1, err
    assert (await cli(b, "sync", "--once"))[0] == 0
    st = hub.ledger.state(SITE, "s3")
    assert st is not None and st["notes"] == "B: bridge washed out"
