"""Session 12, task csv (the user review's spreadsheet findings): importing the same sheet
twice does not make its keyless rows again (skipped, said; ``--again`` makes them).
`python -m desktop.headless` subprocesses against a real hub on 127.0.0.1, real SQLite
files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

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

