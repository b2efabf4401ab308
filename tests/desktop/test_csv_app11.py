"""Session 11, task csv, in the app: File → Import CSV names every bad row by line and
column in a spreadsheet user's words and reads a semicolon file; a full database is said as
such, not as the file's lines. Real widgets (offscreen), a real satellite (SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.satellite.satellite import Satellite
from tests.desktop.test_csv_app import finish, sat, window, write

__all__ = ["sat"]  # the fixture


def test_the_import_dialog_lists_every_bad_row_in_a_spreadsheet_users_words(
        qtbot: Any, sat: Satellite, tmp_path: Path) -> None:
    w = window(qtbot, sat)
    # a comma file: its decimal comma is refused (a ';' file's is read since session 12)
    src = write(tmp_path / "x_types.csv", ["name,lat,lon", "A,46.5,9", 'B,"46,5",9', "C,,east",
                                           "D,1,2"])
    ok, title, text = finish(qtbot, w, w.import_csv(src))
    assert not ok and title == "Import of x_types.csv: failed"
    assert "2 rows cannot be imported, so nothing was imported" in text, text
    assert "line 3, column lat: '46,5' is not a number: write a decimal point, not a comma: " \
        "46.5" in text, text
    assert "line 4, column lon: 'east' is not a number: write digits with a decimal point, " \
        "e.g. 46.5" in text, text
    assert "lat=" not in text and "lon=" not in text  # `pub`'s syntax
    assert sat.status().pending == 1  # the fixture's, nothing more
    # fixed, the semicolon file imports
    write(tmp_path / "x_types.csv", ["name;lat;lon", "A;46.5;9", "B;46.5;9"])
    ok, _, text = finish(qtbot, w, w.import_csv(src))
    assert ok and text.startswith("imported 2 rows (2 new, 0 changed)"), text


def test_a_full_database_is_not_blamed_on_the_files_lines(qtbot: Any, sat: Satellite,
                                                          tmp_path: Path) -> None:
    w = window(qtbot, sat)
    with sat.queue.engine.connect() as c:  # the pool keeps this connection
        pages = c.exec_driver_sql("PRAGMA page_count").scalar()
        c.exec_driver_sql(f"PRAGMA max_page_count = {int(pages or 0) + 5}")
    src = write(tmp_path / "big.csv", ["name,notes", *(f"r{i},{'x' * 300}" for i in range(1200))])
    ok, _, text = finish(qtbot, w, w.import_csv(src))
    assert not ok
    assert text.startswith("the import could not be queued: "), text
    assert "disk is full" in text and "The file's rows are fine" in text, text
    assert "retry" not in text, text  # said once: run the import again
    assert "line" not in text and "nothing was applied" not in text, text
    assert text.count("nothing was imported") == 1, text
    assert sat.status().pending == 1
