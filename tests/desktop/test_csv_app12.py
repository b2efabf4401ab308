"""Session 12, task csv, in the app: File → Import CSV of the same sheet twice does not make
its rows without a key again (said, with how to make them anyway). Real widgets
(offscreen), a real satellite (SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    assert ("2 rows without a key equal to a record that exists were skipped, so that "
            "importing a sheet again does not make its new rows again; to make them anyway, "
            "change a cell of each") in text, text
    assert "--again" not in text
    assert sat.status().pending == pending
    assert sorted(str((v.fields or {}).get("name")) for v in sat.records("field.site")
                  if v.fields and str(v.fields.get("name")).startswith("New")) \
        == ["New bog", "New fen"]
