"""Session 13, task csvahead (review muser13): a sheet exported on a laptop further on whose
cell holds neither this laptop's pending edit nor the value before it (a colleague's change
this laptop has not received, or the sheet user's) does not overwrite the pending edit: it
was sent, the edit shown overwritten, then folded into the import's conflict (mine "C2" |
theirs "C2": the edit gone from every view). `python -m desktop.headless` subprocesses
against a real hub on 127.0.0.1, real SQLite files."""

from __future__ import annotations

import json
from pathlib import Path

from hubserver.server import Hub
from tests.satellite.test_cli import cli
from tests.satellite.test_csv13 import SITE, _export, _fields


async def test_a_sheet_further_on_with_another_value_keeps_ones_pending_edit(
        tmp_path: Path, hub: Hub) -> None:
    """A, B, C synced; A offline saves r2 notes=A2; C saves notes=C2 and syncs; B syncs and
    exports, r4's name changed in the sheet; A imports it: r2's notes stay A2 (named, with
    the sheet's value, counted), r4's name is sent; after a sync A's conflict shows A2."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        assert (await cli(d, "connect", hub.url))[0] == 0
    for k in ("r2", "r4"):
        assert (await cli(a, "pub", SITE, k, "new", f"name={k.upper()}", "notes=orig"))[0] == 0
    for d in (a, b, c):
        assert (await cli(d, "sync", "--once"))[0] == 0
    assert (await cli(a, "pub", SITE, "r2", "mod", "notes=A2"))[0] == 0  # offline, pending
    assert (await cli(c, "pub", SITE, "r2", "mod", "notes=C2"))[0] == 0
    assert (await cli(c, "sync", "--once"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0  # further on than A: has C2
    sheet = await _export(b, tmp_path / "b.csv", {"r4": {"name": "R4-sheet"}})
    rc, out, err = await cli(a, "import", SITE, sheet)
    assert rc == 0, err
    r2 = await _fields(a, SITE, "r2")
    assert r2["notes"] == "A2", r2
    assert (await _fields(a, SITE, "r4"))["name"] == "R4-sheet"
    res = json.loads(out)
    assert res["kept_unsynced_differs_rows"] == 1
    assert res["kept_unsynced_differs"] == [
        {"line": 2, "top": SITE, "key": "r2", "fields": ["notes"], "sheet": {"notes": "C2"}}]
    assert res["changed"] == 1, res
    assert ("line 2 (field.site r2): notes left as you changed it: the sheet has 'C2' from a "
            "satellite further on (your change is not synced yet; that value is a change you "
            "have not received, or the sheet's own): `outpost sync --once` to see whose it "
            "is") in err, err
    assert (await cli(a, "sync", "--once"))[0] == 0
    st = hub.ledger.state(SITE, "r4")
    assert st is not None and st["name"] == "R4-sheet"
    # A's own A2 save is the conflict's mine (not folded into an import edit of C2)
    rc, out, err = await cli(a, "conflicts")
    assert rc == 0, err
    shown = json.dumps(json.loads(out))
    assert '"A2"' in shown and '"C2"' in shown, shown
