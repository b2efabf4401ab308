"""Review 16 "time and place": foreign CSV files (an unclosed quote in the last column, a
tab file's decimal comma, Excel's ``sep=`` line, date-times without an offset), read by
the one CsvImport the CLI and the app share, on real satellites (SQLite) and files."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ValidationError
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop.headless import CsvImport

SITE = "field.site"


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
