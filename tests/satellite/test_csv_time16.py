"""Review 16 "time and place": foreign CSV files (an unclosed quote in the last column, a
tab file's decimal comma, Excel's ``sep=`` line, date-times without an offset), read by
the one CsvImport the CLI and the app share, on real satellites (SQLite) and files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ValidationError
from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.headless import CsvImport

SITE = "field.site"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sat(tmp_path: Path, project: Project) -> Satellite:
    s = Satellite(tmp_path / "sat", project)
    yield s
    s.close()


def _import(sat: Satellite, path: Path, staged: bool = False) -> CsvImport:
    job = CsvImport(sat, SITE, str(path), staged=staged)
    for _ in job.steps():
        pass
    return job


def test_an_unclosed_quote_in_the_last_column_is_named_and_nothing_imported(
        sat: Satellite, tmp_path: Path) -> None:
    src = tmp_path / "sites.csv"
    src.write_bytes(b'name,lat,notes\nRidge,46.1,"Gate locked, ask the farmer\n'
                    b'Lake,46.2,shore path\nPass,46.3,\nSummit,46.4,windy\n')
    for staged in (False, True):  # the CLI's way, the app's
        with pytest.raises(ValidationError) as err:
            _import(sat, src, staged)
        assert str(err.value).startswith(
            f"{src} line 2: a value opens a quote (\") that is not closed, so lines 2-5 were "
            "read as one row: close the quote"), str(err.value)
        assert sat.status().pending == 0 and sat.keys(SITE) == []
    # a quoted value over several lines that is closed is read as before
    src.write_bytes(b'name,lat,notes\nRidge,46.1,"Gate locked,\nask the farmer"\n'
                    b'Lake,46.2,"a ""quoted"" word"\n')
    _import(sat, src)
    notes = sorted((r.fields or {}).get("notes") for r in sat.records(SITE))
    assert notes == ["Gate locked,\nask the farmer", 'a "quoted" word']


def _cli(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "desktop.headless", args[0], "--data",
                           str(data), *args[1:]],
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT,
                          capture_output=True, timeout=60)


def _made(tmp_path: Path, project: Project, names: list[str]) -> Path:
    d = tmp_path / "cli"
    s = Satellite(d, project)
    if names:
        s.pub([Action(SITE, f"s{i}", Cmd.NEW, {"name": n, "lat": 47.3})
               for i, n in enumerate(names)])
    s.close()
    return d


def test_a_spreadsheet_export_starts_with_a_byte_order_mark_and_reads_back(
        tmp_path: Path, project: Project) -> None:
    """Excel reads a CSV without one in the ANSI code page: Zürich came back ZÃ¼rich."""
    d = _made(tmp_path, project, ["Zürich Üetliberg", "Genève"])
    sheet = _cli(d, "export", SITE, "--for-spreadsheet")
    assert sheet.returncode == 0 and sheet.stdout.startswith(b"\xef\xbb\xbf\"key\",")
    plain = _cli(d, "export", SITE)  # for other programs: as before, no mark
    assert plain.returncode == 0 and plain.stdout.startswith(b"key,")
    f = tmp_path / "sheet.csv"
    f.write_bytes(sheet.stdout.replace(b'"47.3"', b'"47.31"', 1))
    back = _cli(d, "import", SITE, str(f), "--from-spreadsheet")
    assert back.returncode == 0 and back.stdout.startswith(
        b"imported 1 row (0 new, 1 changed)"), back


def test_a_cell_garbled_by_a_windows_1252_reading_is_refused(
        sat: Satellite, tmp_path: Path) -> None:
    sat.pub([Action(SITE, "s1", Cmd.NEW, {"name": "Zürich Üetliberg", "lat": 47.3}),
             Action(SITE, "s2", Cmd.NEW, {"name": "Genève", "lat": 46.2}),
             Action(SITE, "s3", Cmd.NEW, {"name": "Ávila", "lat": 40.7})])
    src = tmp_path / "sheet.csv"
    # an export of an older version opened in Excel (Windows-1252; 0x81 kept as U+0081 as
    # Excel does) and saved as CSV UTF-8, one number edited
    text = "key,name,lat\ns1,Zürich Üetliberg,47.31\ns2,Genève,46.2\ns3,Ávila,40.7\n"
    raw = text.encode("utf-8")
    garbled = "".join(bytes([b]).decode("cp1252", "ignore") or chr(b) for b in raw)
    src.write_text("\ufeff" + garbled, encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        _import(sat, src)
    said = str(err.value)
    assert "3 rows cannot be imported, so nothing was imported" in said, said
    assert ("line 2, column name: 'ZÃ¼rich Ãœetliberg' is 'Zürich Üetliberg' read in the "
            "wrong encoding (a spreadsheet opened the UTF-8 file as Windows-1252") in said
    assert "line 4, column name: 'Ã\x81vila' is 'Ávila'" in said, said
    assert (sat.record(SITE, "s1").fields or {})["lat"] == 47.3
    # a name changed for real (non-ASCII too) is imported as before
    src.write_text(text.replace("Genève", "Genève-Plainpalais"), encoding="utf-8")
    _import(sat, src)
    assert (sat.record(SITE, "s2").fields or {})["name"] == "Genève-Plainpalais"
    assert (sat.record(SITE, "s1").fields or {})["lat"] == 47.31


def test_export_and_show_in_a_latin_1_locale(tmp_path: Path, project: Project) -> None:
    """Review 16: the file stopped at the first character Latin-1 has not, with a
    traceback; ``show`` crashed too. (The stream's encoding as a Latin-1 locale sets it.)"""
    d = _made(tmp_path, project, ["Zürich", "Kathmandu नेपाल", "Bern"])
    latin = {"PYTHONIOENCODING": "iso-8859-1"}
    out = _cli(d, "export", SITE, **latin)
    assert out.returncode == 0 and out.stderr == b"", out.stderr
    rows = out.stdout.decode("utf-8").splitlines()
    assert len(rows) == 4 and "s1,Kathmandu नेपाल,,47.3," in rows[2], rows
    shown = _cli(d, "show", SITE, **latin)
    assert shown.returncode == 0 and b"Traceback" not in shown.stderr, shown.stderr
    assert "Z\xfcrich" in shown.stdout.decode("latin-1")  # as the locale writes it
    assert "Kathmandu \\u0928\\u0947" in shown.stdout.decode("latin-1")


def test_a_tab_files_decimal_comma_and_excels_sep_line_are_read(
        sat: Satellite, tmp_path: Path) -> None:
    """README: "a semicolon or tab file is read as is"; a tab file's 46,5 was refused, and
    Excel's first line ``sep=;`` was refused as a column."""
    tab = tmp_path / "tab.csv"
    tab.write_text("name\tlat\nTab Site\t46,5\nMinus\t-0,25\n", encoding="utf-8")
    _import(sat, tab)
    sep = tmp_path / "sep.csv"
    sep.write_text("sep=;\r\nname;lat\r\nSep Site;46,7\r\n", encoding="utf-8-sig")
    _import(sat, sep)
    got = {(r.fields or {})["name"]: (r.fields or {})["lat"] for r in sat.records(SITE)}
    assert got == {"Tab Site": 46.5, "Minus": -0.25, "Sep Site": 46.7}
    # 1,234 in a tab file may be 1.234 or 1234 (an English sheet's thousands separator):
    # refused, both readings named; the line numbers count the sep= line
    tab.write_text("sep=\t\nname\tlat\nOk\t1.5\nGrouped\t1,234\n", encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        _import(sat, tab)
    assert ("line 4, column lat: '1,234' is not a number: its comma may be a decimal comma "
            "(1.234) or a thousands separator (1234): write 1.234 or 1234") in str(err.value)
    assert len(sat.keys(SITE)) == 3


def test_date_times_without_an_offset_are_said_to_be_read_as_utc(
        tmp_path: Path, project: Project) -> None:
    d = _made(tmp_path, project, [])
    src = tmp_path / "obs.csv"
    src.write_text("species,observed\nA,2026-05-01 09:30\nB,2026-05-01T09:30:00+02:00\n"
                   "C,02.05.2026 10:00\nD,2026-05-01 09:30 UTC\nE,\nF,2026-05-03T01:00:00Z\n",
                   encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "desktop.headless", "import", "--data",
                          str(d), "field.obs", str(src)], env={**os.environ,
                          "PYTHONPATH": str(ROOT)}, cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert ("outpost: 2 date-times without an offset were read as UTC (e.g. line 2, column "
            "observed: '2026-05-01 09:30' is 2026-05-01T09:30:00Z). If the file's times are "
            "local times, write their offset (2026-05-01 09:30 +02:00)") in out.stderr
    src.write_text("species,observed\nG,2026-05-01T09:30:00Z\n", encoding="utf-8")
    sat = Satellite(d, project)
    try:
        job = CsvImport(sat, "field.obs", str(src))
        for _ in job.steps():
            pass
        assert job.zone_note() == "" and job.counts.no_zone == 0
    finally:
        sat.close()
