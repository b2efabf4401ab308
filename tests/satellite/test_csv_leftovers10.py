"""Session 9's CSV leftovers, fixed in session 10: formula injection in `outpost export`
(`--for-spreadsheet`, read back by `import --from-spreadsheet`); a missing required field of
a new row named by its row and column; a rejected import batch named, with the fix. Real
CLI processes against a real hub on 127.0.0.1."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project
from hubserver.server import Hub
from tests.satellite.test_cli import cli

SITE = "field.site"
# cells a spreadsheet runs as formulas (OWASP's examples), and ones it must leave alone
NAMES = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A2)", "\tTab", "\rCR", "'quoted",
         "''twice", "-12", "Plain", "＝full width", "a=b"]


async def test_export_for_spreadsheet_neutralises_formulas_and_imports_back_exactly(
        tmp_path: Path, hub: Hub, project: Project) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(b, "connect", hub.url))[0] == 0
    sat = Satellite(a, project)
    sat.pub([Action(SITE, f"k{i:02d}", Cmd.NEW,  # notes: text, where line breaks may be
                    {"name": n.replace("\r", "^"), "lat": -1.5, "notes": n})
             for i, n in enumerate(NAMES)]
            + [Action(SITE, "=key", Cmd.NEW, {"name": "=2*3"})])
    want = {v.key: v.fields for v in sat.records(SITE)}
    sat.close()
    # by default the file is the records exactly (the round trip of import, as before)
    rc, plain, err = await cli(a, "export", SITE, json_out=False)
    assert rc == 0, err
    cells = {r["key"]: r for r in csv.DictReader(io.StringIO(plain, newline=""))}
    assert cells["k00"]["name"] == NAMES[0] and cells["=key"]["name"] == "=2*3"
    rc, sheet, err = await cli(a, "export", SITE, "--for-spreadsheet", json_out=False)
    assert rc == 0, err
    assert sheet.startswith("\ufeff")  # Excel reads UTF-8 only with it (review 16)
    rows = list(csv.reader(io.StringIO(sheet[1:], newline="")))
    assert rows[0] == ["key", "name", "region", "lat", "lon", "notes", "_rev"]
    for row in rows[1:]:
        for cell in row:
            # nothing a spreadsheet runs: every formula-leading cell starts with '
            assert not cell or cell[0] not in "=+-@\t\r＝" or cell in ("-1.5", "-12"), row
    by_key = {r[0]: r for r in rows[1:]}
    assert by_key["'=key"][1] == "'=2*3"
    assert by_key["k00"][1] == "'" + NAMES[0] and by_key["k00"][3] == "-1.5"  # a number
    assert by_key["k06"][1] == "''quoted" and by_key["k08"][1] == "-12"  # -12 reads as -12
    assert by_key["k09"][1] == "Plain" and by_key["k11"][1] == "a=b"
    src = tmp_path / "sheet.csv"
    src.write_text(sheet, encoding="utf-8")
    rc, out, err = await cli(b, "import", SITE, str(src), "--from-spreadsheet")
    assert rc == 0, err
    sat = Satellite(b, project)
    try:
        assert {v.key: v.fields for v in sat.records(SITE)} == want  # exactly as stored
    finally:
        sat.close()
    # imported back into the directory it came from: every row is unchanged
    rc, out, err = await cli(a, "import", SITE, str(src), "--from-spreadsheet", json_out=True)
    assert rc == 0 and '"unchanged": 13' in out, (out, err)


@pytest.mark.parametrize(("text", "said"), [
    # no key: the row makes a new record (before: "new field.site 01a2…: required field
    # 'name' is missing", the key generated for it)
    ("key,region\n,North\n", "line 2: the key cell is empty, so the row makes a new record, "
     "which needs field.site's required name, but the file has no name column: add it"),
    ("region\nNorth\n", "line 2: the key cell is empty"),
    # a key no record has: a new record too; the existing one (s1) is a mod: fine
    ("key,region\ns1,East\nk9,North\n", "line 3: field.site has no record 'k9', so the row "
     "makes a new one, which needs the required name, but the file has no name column"),
    ("key,name,region\ns1,,North\n", "line 2, column name: empty, but field.site's name is "
     "required: give a value"),
])
async def test_a_missing_required_field_names_the_row_and_column(
        tmp_path: Path, hub: Hub, project: Project, text: str, said: str) -> None:
    data = tmp_path / "s"
    assert (await cli(data, "connect", hub.url))[0] == 0
    sat = Satellite(data, project)
    sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Alder Creek"})])
    keys = sat.keys(SITE)
    sat.close()
    src = tmp_path / "in.csv"
    src.write_text(text, encoding="utf-8")
    rc, out, err = await cli(data, "import", SITE, str(src))
    assert rc == 1 and out == "", err
    assert said in err and "required field 'name' is missing" not in err, err
    sat = Satellite(data, project)
    try:
        assert sat.keys(SITE) == keys and sat.status().pending == 1  # nothing queued
    finally:
        sat.close()


async def test_a_row_that_conflicts_is_queued_alone_and_named(
        tmp_path: Path, hub: Hub, project: Project) -> None:
    """An import batch is one transaction, and the hub rejects a transaction whole: one row
    changing a field someone changed since the export took its 4 neighbours with it, and
    `import` said nothing. The row is queued alone and named, with the fix."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert (await cli(d, "connect", hub.url))[0] == 0
    sat = Satellite(a, project)
    sat.pub([Action(SITE, f"k{i}", Cmd.NEW, {"name": f"Site {i}"}) for i in range(5)])
    sat.close()
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0
    rc, text, err = await cli(b, "export", SITE, "--rev", json_out=False)
    assert rc == 0, err
    # meanwhile a renames k2; b syncs, then imports its edited file (every region, k2's name)
    sat = Satellite(a, project)
    sat.pub([Action(SITE, "k2", Cmd.MOD, {"name": "Theirs"})])
    sat.close()
    assert (await cli(a, "sync", "--once"))[0] == 0
    assert (await cli(b, "sync", "--once"))[0] == 0
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    for r in rows:
        r["region"] = "East"
    rows[2]["name"] = "Mine"
    src = tmp_path / "edited.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    rc, _, err = await cli(b, "import", SITE, str(src))
    assert rc == 0, err
    said = [line for line in err.splitlines() if "line 4" in line]
    assert len(said) == 1, err
    assert "(field.site k2): name changed at" in said[0] and "queued as a transaction of " \
        "its own" in said[0] and "`outpost resolve " in said[0], err
    assert "field by field `outpost resolve " in said[0] and "--field FIELD=mine|theirs" \
        in said[0], err  # review 10: per-field resolution is named too
    rc, _, err = await cli(b, "sync", "--once")
    assert rc == 0 and "1 new conflict" in err, err
    sat = Satellite(b, project)
    try:
        got = {v.key: (v.fields or {}).get("region") for v in sat.records(SITE)}
        # session 11: only k2's name (changed on both sides) is the conflict; its region,
        # changed in the file only, went through with the other rows
        assert got == {f"k{i}": "East" for i in range(5)}
        [bad] = [r for r in sat.receipts() if r.state.value == "rejected"]
        assert [(a.key, a.arg) for a in bad.acts] == [("k2", {"name": "Mine"})]
    finally:
        sat.close()


def test_a_rejection_of_several_records_says_the_others_were_not_applied() -> None:
    """A conflict the hub alone knew (the replica was behind at the import): the batch is
    rejected whole, and continuous sync's line says so, naming the conflicting record."""
    from core.model import Conflict
    from core.satellite.api import Receipt, ReceiptState
    from desktop.headless import rejection_line

    acts = tuple(Action(SITE, f"k{i}", Cmd.MOD, {"region": "East"}) for i in range(5))
    r = Receipt("u1", 0, 0, acts, ReceiptState.REJECTED, conflicts=(
        Conflict(SITE, "k2", Cmd.MOD, "field changed", ("region",), {"region": "W"}, 5, "al"),))
    line = rejection_line(r)
    assert "field.site k2: field changed (region) by al" in line, line
    assert "its 4 other records (which collided with nothing) were not applied either" in line
    assert "keep mine sends them all again, keep theirs drops them all" in line
    one = Receipt("u2", 0, 0, acts[:1], ReceiptState.REJECTED, conflicts=(
        Conflict(SITE, "k0", Cmd.MOD, "field changed", ("region",), {"region": "W"}, 5, "al"),))
    assert "whole" not in rejection_line(one)


async def test_a_plain_import_of_a_spreadsheet_export_says_so(
        tmp_path: Path, project: Project) -> None:
    """Final review 10: `outpost import` (without --from-spreadsheet) of a file exported for
    a spreadsheet imports '=2*3 with its ' (the file may mean it) and says, on stderr, that
    the file looks like such an export and how to read it back."""
    a = tmp_path / "a"
    sat = Satellite(a, project)
    sat.pub([Action(SITE, "k1", Cmd.NEW, {"name": "Plain"})])
    sat.close()
    src = tmp_path / "f.csv"
    src.write_text("key,name,notes\nk1,'=2*3,'@x\nk2,'plain,-1\n", encoding="utf-8")
    rc, _out, err = await cli(a, "import", SITE, str(src), json_out=False)
    assert rc == 0, err
    assert ("outpost: the file has 2 cells starting with ' before = + - @ (e.g. '=2*3), as an "
            "export for a spreadsheet writes them; they were imported with their '. If the "
            "file is such an export, import it again with `outpost import "
            "--from-spreadsheet`") in err
    sat = Satellite(a, project)
    try:
        assert sat.record(SITE, "k1").fields["name"] == "'=2*3"  # type: ignore[union-attr]
    finally:
        sat.close()
    rc, _out, err = await cli(a, "import", SITE, str(src), "--from-spreadsheet",
                              json_out=False)
    assert rc == 0 and "cells starting" not in err, err
