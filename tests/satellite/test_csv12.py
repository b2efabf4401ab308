"""Session 12, task csv (the user review's spreadsheet findings): importing the same sheet
twice does not make its keyless rows again (skipped, said; ``--again`` makes them); an
offline import of a sheet exported on a satellite further on is not refused row by row.
`python -m desktop.headless` subprocesses against a real hub on 127.0.0.1, real SQLite
files."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.ledger.memory import MemLedger
from core.schema import parse_project
from hubserver.server import Hub
from tests.satellite.test_cli import cli

SITE = "field.site"


async def _sheet(d: Path, path: Path, extra: list[dict[str, str]]) -> str:
    """The topic exported, with ``extra`` rows (no key) added: a sheet as a user edits it."""
    rc, text, err = await cli(d, "export", SITE, json_out=False)
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(text)))
    header = next(csv.reader(io.StringIO(text)))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, header)
        w.writeheader()
        w.writerows(rows)
        w.writerows({"key": "", **r} for r in extra)
    return str(path)


async def _names(d: Path) -> list[str]:
    rc, out, err = await cli(d, "show", SITE)
    assert rc == 0, err
    return sorted(str(r["fields"].get("name")) for r in json.loads(out))


async def test_importing_a_sheet_twice_does_not_make_its_keyless_rows_again(
        tmp_path: Path, hub: Hub) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    assert (await cli(a, "pub", SITE, "s1", "new", "name=Ridge"))[0] == 0
    assert (await cli(a, "sync", "--once"))[0] == 0
    sheet = await _sheet(a, tmp_path / "s.csv", [{"name": "New bog", "region": "Jura"},
                                                  {"name": "New fen"}])
    rc, out, err = await cli(a, "import", SITE, sheet)
    assert rc == 0, err
    assert json.loads(out)["new"] == 2
    assert (await cli(a, "sync", "--once"))[0] == 0
    rc, out, err = await cli(a, "import", SITE, sheet)
    assert rc == 0, err
    res = json.loads(out)
    assert res["new"] == 0 and res["skipped_repeat_rows"] == 2
    assert [r["line"] for r in res["skipped_repeats"]] == [3, 4]
    assert "line 3 (field.site): the row has no key and equals record" in err
    assert "to make them anyway, import with `--again`" in err
    assert await _names(a) == ["New bog", "New fen", "Ridge"]
    # --again: made anyway
    rc, out, err = await cli(a, "import", SITE, sheet, "--again")
    assert rc == 0, err
    assert json.loads(out)["new"] == 2
    assert await _names(a) == ["New bog", "New bog", "New fen", "New fen", "Ridge"]


async def test_two_equal_keyless_rows_of_one_file_make_two_records(tmp_path: Path,
                                                                  hub: Hub) -> None:
    """Only records there before the import count: two equal new rows are two records."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    sheet = await _sheet(a, tmp_path / "s.csv", [{"name": "Twin"}, {"name": "Twin"}])
    rc, out, err = await cli(a, "import", SITE, sheet)
    assert rc == 0, err
    assert json.loads(out)["new"] == 2 and "skipped" not in err
    assert await _names(a) == ["Twin", "Twin"]


async def test_a_sheet_from_a_satellite_further_on_imports_offline_said_once(
        tmp_path: Path, hub: Hub) -> None:
    """The lead's laptop synced later than carol's; carol imports the lead's sheet offline:
    not refused row by row ("sync first" cannot be done offline) but compared with the
    records as carol's replica has them and sent on its revision, said once."""
    lead, bob, carol = tmp_path / "lead", tmp_path / "bob", tmp_path / "carol"
    for d in (lead, bob, carol):
        assert (await cli(d, "connect", hub.url))[0] == 0
    for i in range(1, 6):
        assert (await cli(lead, "pub", SITE, f"s{i}", "new", f"name=Site {i}",
                          "region=Jura"))[0] == 0
    assert (await cli(lead, "sync", "--once"))[0] == 0
    for d in (bob, carol):
        assert (await cli(d, "sync", "--once"))[0] == 0
    assert (await cli(bob, "pub", SITE, "s5", "mod", "notes=bob's"))[0] == 0
    assert (await cli(bob, "sync", "--once"))[0] == 0
    assert (await cli(lead, "sync", "--once"))[0] == 0  # carol does not: she is offline
    rc, text, err = await cli(lead, "export", SITE, json_out=False)
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(text)))
    rows[2]["region"] = "Engadin (carol)"
    path = tmp_path / "carol.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    rc, out, err = await cli(carol, "import", SITE, str(path))
    assert rc == 0, err
    res = json.loads(out)
    assert res["changed"] == 2 and res["new"] == 0  # s3, and s5 with bob's note carol lacks
    assert err.count("after this replica's revision") == 1, err
    assert "5 rows were compared with the records as this replica has them" in err, err
    assert "`outpost sync --once` before importing" in err and "line" not in err, err
    assert (await cli(carol, "sync", "--once"))[0] == 0
    s3 = hub.ledger.state(SITE, "s3")
    assert s3 is not None and s3["region"] == "Engadin (carol)"
    s5 = hub.ledger.state(SITE, "s5")
    assert s5 is not None and s5["notes"] == "bob's"


async def test_every_bad_cell_of_a_row_is_named(tmp_path: Path, hub: Hub) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", hub.url))[0] == 0
    src = tmp_path / "bad.csv"
    src.write_text("name,lat,lon\nA,north,east\nB,46.5,9\n", encoding="utf-8")
    rc, _, err = await cli(a, "import", SITE, str(src))
    assert rc == 1
    assert ("line 2, column lat: 'north' is not a number: write digits with a decimal point, "
            "e.g. 46.5; column lon: 'east' is not a number") in err, err


PLOT = "t.plot"


@pytest.fixture
async def plot_hub() -> AsyncIterator[Hub]:
    project = parse_project({"project": {"name": "plots"},
                             "t": {"plot": {"key": "str", "display": "title",
                                            "fields": {"title": {"type": "str"},
                                                       "visited": {"type": "date"},
                                                       "area": {"type": "float"},
                                                       "fenced": {"type": "bool"}}}}})
    async with Hub(MemLedger(project), port=0) as h:
        yield h


async def test_a_spreadsheets_own_formats_are_read(tmp_path: Path, plot_hub: Hub) -> None:
    """de-CH dates (21.11.2026), a date with a midnight time, decimal commas in a ';' file
    and WAHR/FALSCH are read; 11/21/2026 is refused with how to set the column's format."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", plot_hub.url))[0] == 0
    src = tmp_path / "dech.csv"
    src.write_bytes("\ufeffkey;title;visited;area;fenced\r\n"
                    "p1;Plot 1;21.11.2026;46,397;WAHR\r\n"
                    "p2;Plot 2;2026-11-22 00:00:00;-0,5;FALSCH\r\n"
                    "p3;Plot 3;1.2.2026;3;vrai\r\n".encode())
    rc, out, err = await cli(a, "import", PLOT, str(src))
    assert rc == 0, err
    assert json.loads(out)["new"] == 3
    rc, out, err = await cli(a, "show", PLOT)
    assert rc == 0, err
    got = {r["key"]: r["fields"] for r in json.loads(out)}
    assert got["p1"] == {"title": "Plot 1", "visited": "2026-11-21", "area": 46.397,
                         "fenced": True}
    assert got["p2"] == {"title": "Plot 2", "visited": "2026-11-22", "area": -0.5,
                         "fenced": False}
    assert got["p3"]["visited"] == "2026-02-01" and got["p3"]["fenced"] is True
    us = tmp_path / "enus.csv"
    us.write_text("key,title,visited\nq1,Q,11/21/2026\n", encoding="utf-8")
    rc, _, err = await cli(a, "import", PLOT, str(us))
    assert rc == 1
    assert ("column visited: '11/21/2026' is not a date: a date with slashes may be "
            "month/day or day/month: set the column's format in the spreadsheet to "
            "year-month-day") in err, err
    # a comma in a comma-separated file stays refused, with its advice
    cm = tmp_path / "comma.csv"
    cm.write_text('key,title,area\nq1,Q,"46,5"\n', encoding="utf-8")
    rc, _, err = await cli(a, "import", PLOT, str(cm))
    assert rc == 1 and "write a decimal point, not a comma: 46.5" in err, err


async def test_a_fix_many_rows_share_is_said_once_per_column(tmp_path: Path,
                                                            plot_hub: Hub) -> None:
    """11/21/2026 on every row: how to set the column's format once, not on every row; a
    fix of one row alone stays on its line."""
    a = tmp_path / "a"
    assert (await cli(a, "connect", plot_hub.url))[0] == 0
    src = tmp_path / "enus.csv"
    src.write_text("key,title,visited,area\n"
                   + "".join(f"q{i},Q,11/{i + 10}/2026,1.5\n" for i in range(1, 4))
                   + "q9,Q,2026-11-21,lots\n", encoding="utf-8")
    rc, _, err = await cli(a, "import", PLOT, str(src))
    assert rc == 1
    assert err.count("set the column's format") == 1, err
    assert "line 2, column visited: '11/11/2026' is not a date\n" in err, err
    assert ("\ncolumn visited (3 rows above): a date with slashes may be month/day or "
            "day/month: set the column's format in the spreadsheet to year-month-day") in err
    assert ("line 5, column area: 'lots' is not a number: write digits with a decimal "
            "point, e.g. 46.5") in err, err
