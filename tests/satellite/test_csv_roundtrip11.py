"""Session 11, task csv: a spreadsheet round trip keeps colleagues' later changes (every
export carries _rev; an import sends only the cells the user changed, and only the cells
changed on both sides become a conflict); every bad row of a CSV is said by line and column
in a spreadsheet user's words; semicolon and tab files are read; a full disk is not blamed on
the file's lines. `python -m desktop.headless` subprocesses against a real hub on 127.0.0.1,
real SQLite files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from core.errors import StorageError
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.headless import CsvImport
from hubserver.server import Hub
from tests.satellite.test_cli import cli

SITE = "field.site"


def _rows(text: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    return list(rows[0].keys()), {r["key"]: r for r in rows}


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> str:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, header)
        w.writeheader()
        w.writerows(rows)
    return str(path)


async def test_a_spreadsheet_round_trip_keeps_a_colleagues_later_change(tmp_path: Path,
                                                                        hub: Hub) -> None:
    """Alice exports (a plain export: no --rev), Bob fixes s1's region, Alice syncs, edits
    only s1's notes in the file and imports it: Bob's region stays (said), her notes go
    out. Then both change s2's name, Alice its notes too: her notes go out, the name is a
    conflict of its own in the inbox, Bob's name stays on the hub."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert (await cli(d, "connect", hub.url))[0] == 0
    for k in ("s1", "s2"):
        assert (await cli(a, "pub", SITE, k, "new", f"name={k.upper()}", "region=North"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0
    rc, text, err = await cli(a, "export", SITE, json_out=False)
    assert rc == 0, err
    header, rows = _rows(text)
    assert header[-1] == "_rev" and rows["s1"]["_rev"]
    assert (await cli(b, "pub", SITE, "s1", "mod", "region=Bernina (fixed by bob)"))[0] == 0
    assert (await cli(b, "pub", SITE, "s2", "mod", "name=Bob2"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    rows["s1"]["notes"] = "typed in the spreadsheet"
    rows["s2"]["notes"] = "s2 notes"
    rows["s2"]["name"] = "Alice2"
    src = _write(tmp_path / "edited.csv", header, list(rows.values()))
    rc, out, err = await cli(a, "import", SITE, src)
    assert rc == 0, err
    res = json.loads(out)
    assert res["left_alone"] == [{"line": 2, "top": SITE, "key": "s1", "fields": ["region"]}]
    assert "line 2 (field.site s1): region left as it is now" in err
    assert [(c["key"], c["fields"]) for c in res["conflicts"]] == [("s2", ["name"])]
    assert "line 3 (field.site s2): name changed" in err and "the row's other cells" in err
    assert res["rows"] == 2  # s2's two parts are one row
    assert (await cli(a, "sync", "--once"))[0] == 0
    s1, s2 = hub.ledger.state(SITE, "s1"), hub.ledger.state(SITE, "s2")
    assert s1 is not None and s1["region"] == "Bernina (fixed by bob)"
    assert s1["notes"] == "typed in the spreadsheet"
    assert s2 is not None and s2["name"] == "Bob2" and s2["notes"] == "s2 notes"
    rc, out, _ = await cli(a, "conflicts")
    inbox = json.loads(out)
    assert [(c["key"], c["fields"]) for r in inbox for c in r["conflicts"]] == [("s2", ["name"])]
    assert inbox[0]["uid"] == res["conflicts"][0]["uid"]


async def test_an_export_with_pending_edits_reads_back_as_no_change(tmp_path: Path,
                                                                   hub: Hub) -> None:
    """Every export has _rev now, pending edits or not; the untouched file changes nothing,
    and a cell edited in it is sent (it differs from the exported value and the record)."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "s1", "new", "name=One", "region=North"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(a, "pub", SITE, "s1", "mod", "region=Pending"))[0] == 0
    assert (await cli(a, "pub", SITE, "s2", "new", "name=Two"))[0] == 0
    rc, text, err = await cli(a, "export", SITE, json_out=False)
    assert rc == 0, err
    header, rows = _rows(text)
    assert header[-1] == "_rev" and rows["s1"]["region"] == "Pending"
    rc, out, err = await cli(a, "import", SITE, _write(tmp_path / "same.csv", header,
                                                       list(rows.values())))
    assert rc == 0, err
    res = json.loads(out)
    assert res["rows"] == 0 and res["unchanged"] == 2 and res["left_alone"] == []
    rows["s2"]["region"] = "South"
    rc, out, err = await cli(a, "import", SITE, _write(tmp_path / "one.csv", header,
                                                       list(rows.values())))
    assert rc == 0 and json.loads(out)["rows"] == 1, err
    rc, out, _ = await cli(a, "show", SITE, "s2")
    assert json.loads(out)["fields"]["region"] == "South"
    # --no-rev: without the column (for another program); its import overwrites, and says so
    rc, text, _ = await cli(a, "export", SITE, "--no-rev", json_out=False)
    assert rc == 0 and "_rev" not in text


async def test_a_file_without_rev_says_it_overwrites_and_how_to_avoid_it(tmp_path: Path,
                                                                         hub: Hub) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "s1", "new", "name=One"))[0] == 0
    src = tmp_path / "old.csv"
    src.write_text("key,name\ns1,Renamed\n", encoding="utf-8")
    rc, _, err = await cli(a, "import", SITE, str(src), json_out=False)
    assert rc == 0, err
    assert "has no _rev column" in err and "over any change others made since" in err
    assert "export again" in err.lower()


async def test_every_bad_row_is_named_by_line_and_column_in_a_spreadsheet_users_words(
        tmp_path: Path, hub: Hub) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    src = tmp_path / "x_types.csv"
    src.write_text("species,count,observed,condition\n"
                   "Ibex,three,,good\n"
                   "Marmot,2,,good\n"
                   "Chamois,4,yesterday,good\n"
                   "Eagle,1,,great\n"
                   "Fox,2.5,,fair\n", encoding="utf-8")
    rc, _, err = await cli(a, "import", "field.obs", str(src), json_out=False)
    assert rc == 1
    assert "4 rows cannot be imported, so nothing was imported" in err, err
    # the fix both count rows share: once, after the rows (session 12)
    assert "line 2, column count: 'three' is not a whole number\n" in err
    assert "\ncolumn count (2 rows above): write digits, e.g. 3" in err
    assert "line 4, column observed: 'yesterday' is not a date and time" in err
    assert "line 5, column condition: 'great' is not one of the choices: write one of: " \
        "good, fair, poor" in err
    assert "line 6, column count: '2.5' is not a whole number" in err
    assert "count=3" not in err  # `pub`'s syntax
    assert json.loads((await cli(a, "status"))[1])["pending"] == 0
    # many: the first 50, then a count
    src.write_text("species,count\n" + "".join(f"S{i},x{i}\n" for i in range(80)),
                   encoding="utf-8")
    rc, _, err = await cli(a, "import", "field.obs", str(src), json_out=False)
    assert rc == 1 and "80 rows cannot be imported" in err
    assert "line 51, column count" in err and "line 52, column" not in err
    assert "and 30 more" in err
    # one bad row: said in one line, as before
    src.write_text("name,lat\nS,46,5\n", encoding="utf-8")
    rc, _, err = await cli(a, "import", SITE, str(src), json_out=False)
    assert rc == 1 and "line 2: 3 values, but the header has 2 columns" in err


async def test_semicolon_and_tab_files_are_read(tmp_path: Path, hub: Hub) -> None:
    """A spreadsheet in a locale with a decimal comma (de-CH, fr-CH) saves CSV with ';'."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    semi = tmp_path / "semi.csv"
    semi.write_text("\ufeffkey;name;region;lat\ns1;Alp, upper;Engadin;46.5\n", encoding="utf-8")
    rc, out, err = await cli(a, "import", SITE, str(semi))
    assert rc == 0, err
    assert json.loads(out)["new"] == 1
    tab = tmp_path / "tab.csv"
    tab.write_text("key\tname\tregion\ns2\tTabbed\tNorth\n", encoding="utf-8")
    rc, out, err = await cli(a, "import", SITE, str(tab))
    assert rc == 0, err
    rc, out, _ = await cli(a, "show", SITE)
    got = {r["key"]: r["fields"] for r in json.loads(out)}
    assert (got["s1"]["name"], got["s1"]["region"], got["s1"]["lat"]) == (
        "Alp, upper", "Engadin", 46.5)
    assert got["s2"]["name"] == "Tabbed"
    # a decimal comma of a ';' file is read since session 12 (in a ',' file it is still
    # refused with the value to write: test_csv12)
    semi.write_text("key;name;lat\ns3;Three;46,5\n", encoding="utf-8")
    rc, out, err = await cli(a, "import", SITE, str(semi))
    assert rc == 0 and json.loads(out)["new"] == 1, err


def test_a_full_disk_is_said_as_such_not_as_the_files_lines(tmp_path: Path,
                                                            project: Project) -> None:
    """The satellite's database refuses to grow (SQLite's max_page_count: "database or disk
    is full", as on a full disk): the error says so once, without a line range."""
    sat = Satellite(tmp_path / "s", project)
    try:
        with sat.queue.engine.connect() as c:  # the pool keeps this connection
            pages = c.exec_driver_sql("PRAGMA page_count").scalar()
            c.exec_driver_sql(f"PRAGMA max_page_count = {int(pages or 0) + 5}")
        src = tmp_path / "f.csv"
        src.write_text("name,notes\n" + "".join(f"r{i},{'x' * 300}\n" for i in range(1200)),
                       encoding="utf-8")
        job = CsvImport(sat, SITE, str(src))
        try:
            for _ in job.steps():
                pass
            raise AssertionError("imported on a full database")
        except StorageError as exc:
            text = str(exc)
        assert "disk is full" in text and "the file's rows are fine" in text.lower()
        assert "lines " not in text and "line " not in text
        assert "nothing was applied" not in text and text.count("nothing was imported") == 1
        assert "retry" not in text  # said once: run the import again
        assert text.endswith("run the import again once there is room")
        assert sat.status().pending == 0
    finally:
        sat.close()


def test_the_full_disk_words_of_the_safety_review() -> None:
    """diskfull.out line 30 (a 3 MB tmpfs): the storage error the ledger words for a full
    disk, as the import says it."""
    from desktop.headless import _import_failed

    raw = StorageError("a write transaction failed on /t/tmpfs/f/satellite.db: database or "
                       "disk is full: the disk holding /t/tmpfs/f is full (0 bytes free): "
                       "free space there (or move the ledger to a disk with room), then "
                       "retry; nothing was applied")
    text = str(_import_failed(raw, "/t/f.csv lines 14002-14501: "))
    assert text == (
        "the import could not be queued: a write transaction failed on "
        "/t/tmpfs/f/satellite.db: database or disk is full: the disk holding /t/tmpfs/f is "
        "full (0 bytes free): free space there (or move the data directory to a disk with "
        "room). The file's rows are fine (every one was checked); nothing was imported (an "
        "import is queued whole or not at all): run the import again once there is room")


async def test_a_rev_a_spreadsheet_reformatted_is_said_with_the_fix(tmp_path: Path,
                                                                    hub: Hub) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    src = tmp_path / "sheet.csv"
    src.write_text("key;name;_rev\ns1;One;27.11.2026 15:41\n", encoding="utf-8")
    rc, _, err = await cli(a, "import", SITE, str(src), json_out=False)
    assert rc == 1 and "line 2, column _rev: '27.11.2026 15:41' is not a revision" in err, err
    assert "a spreadsheet may have turned it into a date" in err and "export again" in err
