"""Session 11, task csv2 (the final review's findings on the CSV round trip): a cell the user
changed back to the replica's value at the file's ``_rev`` is sent when the change since was
the user's own (pending at the export, or accepted since), not dropped as "left alone"; an
unchanged row of a record deleted since the export is skipped (said), not a reason to refuse
the file; a key not in the export makes a new record and says so. `python -m
desktop.headless` subprocesses against a real hub on 127.0.0.1, real SQLite files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

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


async def _export(d: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    rc, text, err = await cli(d, "export", SITE, json_out=False)
    assert rc == 0, err
    header, rows = _rows(text)
    assert header[-1] == "_rev"
    return header, rows


async def _fields(d: Path, key: str) -> dict[str, object]:
    rc, out, err = await cli(d, "show", SITE, key)
    assert rc == 0, err
    fields: dict[str, object] = json.loads(out)["fields"]
    return fields


async def test_undoing_ones_own_pending_typo_in_the_sheet_is_sent(tmp_path: Path,
                                                                 hub: Hub) -> None:
    """A typo pending at the export (the file shows it); the user fixes it in the sheet back
    to the replica's value at _rev: sent, and nothing said about "left as it is now"."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "s1", "new", "name=Ridge", "region=North"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(a, "pub", SITE, "s1", "mod", "name=Rdige"))[0] == 0
    header, rows = await _export(a)
    assert rows["s1"]["name"] == "Rdige"
    rows["s1"]["name"] = "Ridge"
    rc, out, err = await cli(a, "import", SITE, _write(tmp_path / "e.csv", header,
                                                       list(rows.values())))
    assert rc == 0, err
    res = json.loads(out)
    assert res["rows"] == 1 and res["left_alone"] == [] and "left as" not in err
    assert (await _fields(a, "s1"))["name"] == "Ridge"
    assert (await cli(a, "sync", "--once"))[0] == 0
    s1 = hub.ledger.state(SITE, "s1")
    assert s1 is not None and s1["name"] == "Ridge"


async def test_clearing_a_cell_of_ones_own_new_record_is_sent(tmp_path: Path,
                                                              hub: Hub) -> None:
    """A record made offline, pending at the export (no record at _rev): a cell the user
    empties in the sheet is sent; the same once the record was synced after _rev."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "s0", "new", "name=Other"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(a, "pub", SITE, "s1", "new", "name=Ridge", "notes=TODO check"))[0] == 0
    assert (await cli(a, "pub", SITE, "s2", "new", "name=Col", "notes=TODO too"))[0] == 0
    header, rows = await _export(a)
    assert rows["s1"]["notes"] == "TODO check"
    rows["s1"]["notes"] = ""
    rc, out, err = await cli(a, "import", SITE, _write(tmp_path / "e.csv", header,
                                                       list(rows.values())))
    assert rc == 0, err
    assert json.loads(out)["left_alone"] == [] and "left as" not in err
    assert not (await _fields(a, "s1")).get("notes")
    # s2 synced (accepted after _rev) before its cell is cleared: the user's own change too
    assert (await cli(a, "sync", "--once"))[0] == 0
    rows["s2"]["notes"] = ""
    rc, out, err = await cli(a, "import", SITE, _write(tmp_path / "e.csv", header,
                                                       list(rows.values())))
    assert rc == 0, err
    assert json.loads(out)["left_alone"] == [] and "left as" not in err
    assert not (await _fields(a, "s2")).get("notes")


async def test_a_second_import_of_the_same_sheet_can_undo_the_first(tmp_path: Path,
                                                                   hub: Hub) -> None:
    """Edit the sheet, import, sync; put the old name back in the same sheet, import again:
    the second change is sent (the change since _rev was the user's own). A colleague's
    change since _rev still stays (said, in true words)."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert (await cli(d, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "s1", "new", "name=Ridge", "region=North"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0
    header, rows = await _export(a)
    rows["s1"]["name"] = "Ridge North"
    src = _write(tmp_path / "e.csv", header, list(rows.values()))
    assert (await cli(a, "import", SITE, src))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(b, "pub", SITE, "s1", "mod", "region=Bernina"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    rows["s1"]["name"] = "Ridge"
    rc, out, err = await cli(a, "import", SITE, _write(tmp_path / "e.csv", header,
                                                       list(rows.values())))
    assert rc == 0, err
    res = json.loads(out)
    assert res["left_alone"] == [{"line": 2, "top": SITE, "key": "s1", "fields": ["region"]}]
    assert ("line 2 (field.site s1): region left as it is now (another user changed it "
            "since the file was exported; the file has the value from before that change)"
            in err)
    fields = await _fields(a, "s1")
    assert fields["name"] == "Ridge" and fields["region"] == "Bernina"


async def test_an_untouched_row_of_a_record_deleted_since_is_skipped(tmp_path: Path,
                                                                    hub: Hub) -> None:
    """A colleague deletes s2 after the export: the file (s1 edited, s2 untouched) imports,
    s2's row skipped and said; an edited row of a deleted record still refuses the file."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert (await cli(d, "connect", hub.url))[0] == 0
    for k in ("s1", "s2"):
        assert (await cli(a, "pub", SITE, k, "new", f"name={k}"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0
    header, rows = await _export(a)
    assert (await cli(b, "pub", SITE, "s2", "del"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    rows["s1"]["notes"] = "typed in the sheet"
    rc, out, err = await cli(a, "import", SITE, _write(tmp_path / "e.csv", header,
                                                       list(rows.values())))
    assert rc == 0, err
    res = json.loads(out)
    assert res["rows"] == 1 and res["skipped_deleted_rows"] == 1
    assert [(s["line"], s["key"]) for s in res["skipped_deleted"]] == [(3, "s2")]
    assert "line 3 (field.site s2): s2 was deleted since the export by " in err
    assert "the row was unchanged, skipped" in err
    assert (await _fields(a, "s1"))["notes"] == "typed in the sheet"
    assert (await cli(a, "show", SITE, "s2"))[0] != 0
    # the row edited: still an error, nothing imported
    rows["s2"]["notes"] = "for s2"
    rows["s1"]["notes"] = "again"
    rc, out, err = await cli(a, "import", SITE, _write(tmp_path / "e.csv", header,
                                                       list(rows.values())))
    assert rc != 0 and "was deleted since the file was exported" in err
    assert "the row changes it" in err
    assert (await _fields(a, "s1"))["notes"] == "typed in the sheet"


async def test_a_key_edited_in_a_file_with_rev_says_it_made_a_new_record(tmp_path: Path,
                                                                        hub: Hub) -> None:
    """The user "fixes" a key in the sheet: a second record, said on stderr, in --json and
    in the summary (not silently)."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "ridge-1", "new", "name=Ridge", "region=North"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    header, rows = await _export(a)
    rows["ridge-1"]["key"] = "ridge-01"
    src = _write(tmp_path / "e.csv", header, list(rows.values()))
    rc, out, err = await cli(a, "import", SITE, src)
    assert rc == 0, err
    res = json.loads(out)
    assert res["new"] == 1 and res["new_key_rows"] == 1
    assert res["new_keys"] == [{"line": 2, "top": SITE, "key": "ridge-01"}]
    assert ("line 2 (field.site): key ridge-01 was not in the export: made a new record; "
            "to make new records leave the key empty") in err
    rc, out, err = await cli(a, "import", SITE, src, json_out=False)
    assert rc == 0, err
    # the second time the record exists: an unchanged row, nothing said
    assert "not in the export" not in err and "unchanged" in out
