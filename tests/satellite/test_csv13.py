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


async def _obs(d: Path) -> list[str]:
    rc, out, err = await cli(d, "show", OBS)
    assert rc == 0, err
    return sorted(f"{r['fields']['species']} {r['fields'].get('observer')}"
                  for r in json.loads(out))


async def test_a_keyless_row_is_a_repeat_only_of_a_whole_record(tmp_path: Path,
                                                                hub: Hub) -> None:
    """A new sighting "Red fox, 4" typed in a two-column sheet is not Anna's older record
    with an observer and a date (it was skipped as equal on the file's columns); a row equal
    to a whole record is skipped, and the advice makes only the skipped lines again."""
    b = tmp_path / "b"
    assert (await cli(b, "connect", hub.url))[0] == 0
    assert (await cli(b, "pub", OBS, "o1", "new", "species=Red fox", "count=4",
                      "observed=2026-11-20 10:00", "observer=Anna"))[0] == 0
    day2 = tmp_path / "day2.csv"
    day2.write_text("species,count\nRed fox,4\nBadger,1\n", encoding="utf-8")
    rc, out, err = await cli(b, "import", OBS, str(day2))
    assert rc == 0, err
    assert await _obs(b) == ["Badger None", "Red fox Anna", "Red fox None"]
    res = json.loads(out)
    assert res["new"] == 2 and res["skipped_repeat_rows"] == 0 and "skipped" not in err, err
    # the same sheet again: both rows equal the records the first import made, in every field
    rc, out, err = await cli(b, "import", OBS, str(day2))
    assert rc == 0, err
    assert json.loads(out)["skipped_repeat_rows"] == 2
    assert "line 2 (field.obs): the row has no key and equals record" in err, err
    assert "to make them anyway, import with `--again`" in err, err
    # one repeat, one new row: --again alone would make the new one twice; the advice names
    # the skipped lines only
    day3 = tmp_path / "day3.csv"
    day3.write_text("species,count\nLynx,2\nBadger,1\n", encoding="utf-8")
    rc, out, err = await cli(b, "import", OBS, str(day3))
    assert rc == 0, err
    assert [r["line"] for r in json.loads(out)["skipped_repeats"]] == [3]
    assert json.loads(out)["skipped_repeat_lines"] == "3"
    advice = (f"import only those lines with `outpost import field.obs {day3} --again "
              "--lines 3` (`--again` alone would make the file's 1 other row without a key "
              "again too)")
    assert advice in err, err
    rc, out, err = await cli(b, "import", OBS, str(day3), "--again", "--lines", "3")
    assert rc == 0, err
    assert json.loads(out)["new"] == 1
    assert await _obs(b) == ["Badger None", "Badger None", "Lynx None", "Red fox Anna",
                             "Red fox None"]


async def test_a_row_of_a_record_not_received_yet_is_skipped_not_made_new(
        tmp_path: Path, hub: Hub) -> None:
    """A makes s5 after B's last sync and exports; B imports A's sheet unchanged: s5 is not
    made (it was, "not in the export", then a false key clash that "keep both" doubled);
    said, with sync first. A keyless row of the same sheet is still made. After a sync the
    same file imports as any other."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert (await cli(d, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "s1", "new", "name=Site 1"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0
    assert (await cli(a, "pub", SITE, "s5", "new", "name=Site 5", "region=South"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    sheet = await _export(a, tmp_path / "a.csv")
    text = Path(sheet).read_text(encoding="utf-8")
    rev = text.splitlines()[1].rsplit(",", 1)[1]
    Path(sheet).write_text(text + f",New fen,,,,,{rev}\n", encoding="utf-8")
    rc, out, err = await cli(b, "import", SITE, sheet)
    assert rc == 0, err
    rc, shown, _ = await cli(b, "show", SITE)
    assert sorted(r["fields"]["name"] for r in json.loads(shown)) == [
        "New fen", "Site 1"], shown
    res = json.loads(out)
    assert res["new"] == 1 and res["new_key_rows"] == 0
    assert res["skipped_not_received"] == [{"line": 3, "top": SITE, "key": "s5"}]
    assert ("line 3 (field.site s5): this replica has no record s5 yet: the file was exported "
            "on a satellite that synced later, which may have it; skipped, not made as a new "
            "record: `outpost sync --once`, then import the file again (a row you added to "
            "the sheet yourself: empty its _rev cell and import again)") in err, err
    assert "not in the export" not in err
    assert (await cli(b, "sync", "--once"))[0] == 0
    rc, out, err = await cli(b, "conflicts")
    assert rc == 0 and json.loads(out) == [], out
    # synced: the file's _rev is no longer ahead, s5 compares with the export (unchanged)
    rc, out, err = await cli(b, "import", SITE, sheet)
    assert rc == 0, err
    res = json.loads(out)
    assert res["skipped_not_received_rows"] == 0 and res["unchanged"] >= 2, (res, err)
    st = hub.ledger.state(SITE, "s5")
    assert st is not None and st["region"] == "South"


async def test_a_spreadsheets_date_time_is_read_as_its_dates_are(tmp_path: Path,
                                                                 hub: Hub) -> None:
    """User review 13: `21.11.2026 07:15` (a de-CH spreadsheet's date-time cell) refused the
    file while `21.11.2026` is read on a date field; the same pattern reads both."""
    b = tmp_path / "b"
    assert (await cli(b, "connect", hub.url))[0] == 0
    src = tmp_path / "dt.csv"
    src.write_text("key;species;observed\no1;Badger;21.11.2026 07:15\n"
                   "o2;Lynx;21.11.2026 07:15:30\n", encoding="utf-8")
    rc, out, err = await cli(b, "import", OBS, str(src))
    assert rc == 0, err
    assert json.loads(out)["new"] == 2
    assert (await _fields(b, OBS, "o1"))["observed"] == "2026-11-21T07:15:00Z"
    assert (await _fields(b, OBS, "o2"))["observed"] == "2026-11-21T07:15:30Z"
