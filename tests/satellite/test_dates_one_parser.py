"""Dates: one parser (core.revision.read_date) for the app's date box, ``outpost pub`` and a CSV
cell (user review 12: the app took ``2026-3-13`` and saved ``2026-03-13``, while ``outpost pub
visited=2026-3-13`` and a CSV cell of that text were refused). The CLI runs as a subprocess
against a real hub on 127.0.0.1; the form is the app's (offscreen)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.ledger.memory import MemLedger
from core.revision import read_date
from core.schema import Project, parse_project
from desktop.widgets.form import read_date as box_date
from hubserver.server import Hub
from tests.satellite.test_cli import cli

VISIT = "t.visit"


@pytest.fixture
def dated() -> Project:
    return parse_project({"project": {"name": "dated"},
                          "t": {"visit": {"key": "str", "display": "name",
                                          "fields": {"name": {"type": "str"},
                                                     "visited": {"type": "date"},
                                                     "done": {"type": "bool"}}}}})


@pytest.fixture
async def dated_hub(dated: Project) -> AsyncIterator[Hub]:
    async with Hub(MemLedger(dated), port=0) as h:
        yield h


def test_read_date_reads_what_the_app_takes() -> None:
    for text, value in (("2026-3-13", "2026-03-13"), (" 2026-03-13 ", "2026-03-13"),
                        ("2026-11-7", "2026-11-07"), ("2024-02-29", "2024-02-29")):
        assert read_date(text) == value
        assert box_date(text) == value  # the app's date box reads it the same way
    with pytest.raises(ValueError, match=r"not a date \(day is out of range for month\): "
                                         "write it as YYYY-MM-DD, e.g. 2026-11-27"):
        read_date("2026-2-30")
    for text in ("13-3-2026", "2026-03-13T10:00", "2026/3/13", ""):
        with pytest.raises(ValueError, match="not a date: write it as YYYY-MM-DD"):
            read_date(text)


def test_a_date_field_parses_text_as_the_app_does(dated: Project) -> None:
    f = dated.model(VISIT).field("visited")
    assert f is not None
    assert f.parse_text("2026-3-13") == "2026-03-13"
    assert f.check_value(f.parse_text("2026-3-13")) is None
    assert f.parse_text("") is None
    with pytest.raises(ValueError, match=r"field 'visited': '13-3-2026' is not a date: "
                                         "write it as YYYY-MM-DD"):
        f.parse_text("13-3-2026")


async def test_cli_and_csv_take_the_dates_the_app_takes(tmp_path: Path, dated_hub: Hub) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", dated_hub.url))[0] == 0
    rc, out, err = await cli(a, "pub", VISIT, "v1", "new", "name=One", "visited=2026-3-13")
    assert rc == 0, err
    src = tmp_path / "visits.csv"
    src.write_text("key,name,visited\nv2,Two,2026-3-5\nv3,Three,2026-03-06\n", encoding="utf-8")
    rc, out, err = await cli(a, "import", VISIT, str(src))
    assert rc == 0, err
    for key, value in (("v1", "2026-03-13"), ("v2", "2026-03-05"), ("v3", "2026-03-06")):
        rc, out, _ = await cli(a, "show", VISIT, key)
        assert rc == 0 and json.loads(out)["fields"]["visited"] == value
    rc, out, err = await cli(a, "pub", VISIT, "v4", "new", "name=Four", "visited=2026-2-30")
    assert rc != 0 and "not a date (day is out of range for month)" in err, err
    assert "write it as YYYY-MM-DD" in err
    # 13.3.2026 (de-CH) is read since session 12 (task csv: test_csv12); 13-3-2026 is not
    src.write_text("key,name,visited\nv5,Five,13-3-2026\n", encoding="utf-8")
    rc, out, err = await cli(a, "import", VISIT, str(src), json_out=False)
    assert rc == 1 and "line 2, column visited: '13-3-2026' is not a date" in err, err


def test_dates_and_booleans_of_spreadsheets_are_read_by_the_one_parser(dated: Project) -> None:
    """Session 12's note: ``21.11.2026``, ``2026-11-21 00:00:00`` and WAHR/FALSCH were read by
    CSV import only (its own code), not by ``outpost pub`` nor the app's date box. Now by
    core's parsers, which all three use."""
    from core.schema import read_bool

    for text in ("21.11.2026", " 21.11.2026 ", "2026-11-21 00:00:00", "2026-11-21T00:00",
                 "2026-11-21 00:00:00.000"):
        assert read_date(text) == "2026-11-21"
        assert box_date(text) == "2026-11-21"
    assert read_date("1.3.2026") == "2026-03-01"
    with pytest.raises(ValueError, match=r"not a date \(day is out of range for month\)"):
        read_date("30.2.2026")
    with pytest.raises(ValueError, match=r"\(or 27\.11\.2026\)"):
        read_date("2026-11-21 10:00")
    f = dated.model(VISIT).field("done")
    assert f is not None
    for text, value in (("WAHR", True), ("falsch", False), ("Vrai", True), ("FAUX", False),
                        ("vero", True), ("FALSO", False), ("yes", True), ("0", False)):
        assert read_bool(text) is value and f.parse_text(text) is value
    with pytest.raises(ValueError, match=r"field 'done': 'ja' is not"):
        f.parse_text("ja")


async def test_outpost_pub_takes_what_csv_import_takes(tmp_path: Path, dated_hub: Hub) -> None:
    a = tmp_path / "a"
    assert (await cli(a, "connect", dated_hub.url))[0] == 0
    rc, out, err = await cli(a, "pub", VISIT, "v1", "new", "name=One", "visited=21.11.2026",
                             "done=WAHR")
    assert rc == 0, err
    rc, out, err = await cli(a, "pub", VISIT, "v2", "new", "name=Two",
                             "visited=2026-11-22 00:00:00", "done=FAUX")
    assert rc == 0, err
    src = tmp_path / "visits.csv"
    src.write_text("key,name,visited,done\nv3,Three,23.11.2026,VERO\n", encoding="utf-8")
    rc, out, err = await cli(a, "import", VISIT, str(src))
    assert rc == 0, err
    for key, day, done in (("v1", "2026-11-21", True), ("v2", "2026-11-22", False),
                           ("v3", "2026-11-23", True)):
        rc, out, _ = await cli(a, "show", VISIT, key)
        assert rc == 0
        assert json.loads(out)["fields"] == {"name": json.loads(out)["fields"]["name"],
                                             "visited": day, "done": done}


async def test_a_midnight_date_time_with_dots_is_read_on_a_date_field(
        tmp_path: Path, dated_hub: Hub) -> None:
    """Session 13's note: ``21.11.2026 00:00`` (a de-CH sheet's date-time cell) was refused on
    a date field, though ``2026-11-21 00:00`` and ``21.11.2026`` were read. Another time of
    day stays refused: it is no date."""
    for text in ("21.11.2026 00:00", "21.11.2026 00:00:00", " 21.11.2026T00:00:00.000 "):
        assert read_date(text) == "2026-11-21" and box_date(text) == "2026-11-21"
    with pytest.raises(ValueError, match="not a date"):
        read_date("21.11.2026 07:15")
    a = tmp_path / "a"
    assert (await cli(a, "connect", dated_hub.url))[0] == 0
    src = tmp_path / "visits.csv"
    src.write_text("key;name;visited\nv1;One;21.11.2026 00:00\n", encoding="utf-8")
    rc, out, err = await cli(a, "import", VISIT, str(src))
    assert rc == 0, err
    rc, out, _ = await cli(a, "show", VISIT, "v1")
    assert json.loads(out)["fields"]["visited"] == "2026-11-21"
