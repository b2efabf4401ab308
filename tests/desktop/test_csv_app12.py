"""Session 12, task csv, in the app: File → Import CSV of the same sheet twice does not make
its rows without a key again (said, with how to make them anyway). Real widgets
(offscreen), a real satellite (SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QTextEdit

from core.revision import format_rev
from core.satellite.satellite import Satellite
from tests.desktop.test_csv_app import finish, sat, window, write

__all__ = ["sat"]  # the fixture


def test_importing_a_sheet_twice_skips_its_keyless_rows(qtbot: Any, sat: Satellite,
                                                       tmp_path: Path) -> None:
    w = window(qtbot, sat)
    src = write(tmp_path / "new.csv", ["name,region", "New bog,Jura", "New fen,"])
    ok, _, text = finish(qtbot, w, w.import_csv(src))
    assert ok and text.startswith("imported 2 rows (2 new, 0 changed)"), text
    pending = sat.status().pending
    ok, _, text = finish(qtbot, w, w.import_csv(src))
    assert ok and text.startswith("imported 0 rows (0 new, 0 changed)"), text
    # session 13: each line and the record it equals named, with a button to make them
    assert ("2 rows without a key were skipped: each equals a record that exists in every "
            "field (made by an earlier import of the file?), so that importing a sheet again "
            "does not make its new rows again: line 2 (= ") in text, text
    assert "To make them anyway, click Make them anyway" in text, text
    assert "--again" not in text
    assert sat.status().pending == pending
    assert sorted(str((v.fields or {}).get("name")) for v in sat.records("field.site")
                  if v.fields and str(v.fields.get("name")).startswith("New")) \
        == ["New bog", "New fen"]


def test_a_sheet_from_a_satellite_further_on_is_said_once_naming_sync_now(
        qtbot: Any, sat: Satellite, tmp_path: Path) -> None:
    """Its _rev is after this replica's (exported on a laptop that synced later): imported
    against the records as this replica has them, said once, with the app's Sync now."""
    w = window(qtbot, sat)
    later = format_rev(sat.rev() + 60_000)
    src = write(tmp_path / "lead.csv", ["key,name,region,_rev",
                                        *(f"s{i},Site {i},North,{later}" for i in (1, 2)),
                                        f"s3,Site 3,Engadin (carol),{later}"])
    pending = sat.status().pending
    ok, _, text = finish(qtbot, w, w.import_csv(src))
    assert ok and text.startswith("imported 1 row (0 new, 1 changed)"), text
    assert text.count("after this replica's revision") == 1, text
    assert "Its 3 rows were compared with the records as this replica has them" in text, text
    assert "Sync now (F5) before importing" in text and "outpost" not in text, text
    assert "line" not in text, text
    assert sat.status().pending == pending + 1
    rv = sat.record("field.site", "s3")
    assert rv is not None and (rv.fields or {}).get("region") == "Engadin (carol)"


def test_every_bad_cell_of_a_row_is_named_in_a_box_that_scrolls(
        qtbot: Any, sat: Satellite, tmp_path: Path) -> None:
    """50 bad rows of two bad cells each: every cell named, and the list in a scrollable
    text view of a box that fits a screen (it was a label 1,512-2,912 px tall)."""
    w = window(qtbot, sat)
    src = write(tmp_path / "bad.csv", ["name,lat,lon",
                                       *(f"R{i},north,east" for i in range(50))])
    ok, _, text = finish(qtbot, w, w.import_csv(src))
    assert not ok
    # every cell named; the fix the rows share said once per column, after them
    assert ("line 2, column lat: 'north' is not a number; column lon: 'east' is not a "
            "number\n") in text, text
    assert text.count("write digits with a decimal point") == 2, text
    assert text.endswith("\ncolumn lat (50 rows above): write digits with a decimal point, "
                         "e.g. 46.5\ncolumn lon (50 rows above): write digits with a decimal "
                         "point, e.g. 46.5"), text
    box = w.csv_box
    assert box is not None
    views = box.findChildren(QTextEdit)
    assert len(views) == 1 and views[0].isVisible()
    assert "line 51, column lat" in views[0].toPlainText()
    assert box.text().endswith("bad.csv: 50 rows cannot be imported, so nothing was "
                               "imported; fix them and import the file again:\n\n"
                               "(the 52 lines below)"), box.text()
    assert "line 2" not in box.text()
    assert box.sizeHint().height() < 800, box.sizeHint()


def test_a_semicolon_sheets_decimal_commas_are_read(qtbot: Any, sat: Satellite,
                                                    tmp_path: Path) -> None:
    w = window(qtbot, sat)
    src = write(tmp_path / "dech.csv", ["name;lat;lon", "A;46,397;9,5", "B;-0,5;7"])
    ok, _, text = finish(qtbot, w, w.import_csv(src))
    assert ok and text.startswith("imported 2 rows (2 new, 0 changed)"), text
    got = {(v.fields or {}).get("name"): v.fields for v in sat.records("field.site")}
    assert got["A"] is not None and (got["A"]["lat"], got["A"]["lon"]) == (46.397, 9.5)
    assert got["B"] is not None and got["B"]["lat"] == -0.5
