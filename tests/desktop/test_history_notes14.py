"""Session 14: the app's history view says what `outpost history` says beside a change: a
colleague's change that had the user's values already (the edit settled by itself) and the
change that sent the rest of it. Real satellites (SQLite in tmp_path), a real hub on
127.0.0.1, real Qt widgets (offscreen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from core.model import Action, Cmd
from core.satellite.api import ReceiptState
from core.schema import Project
from desktop.format import short_rev
from desktop.widgets.history import HistoryView
from hubserver.server import Hub
from tests.satellite.test_review13_same import hub, sync, two  # noqa: F401 (fixture)

SITE = "field.site"


async def test_history_view_marks_an_edit_settled_by_itself(
        qtbot: Any, tmp_path: Path, project: Project, hub: Hub) -> None:  # noqa: F811
    a, b = await two(tmp_path, project, hub)
    a.pub([Action(SITE, "s3", Cmd.MOD, {"lat": 44.4})])
    await sync(a, hub)
    sheet = b.pub([Action(SITE, "s3", Cmd.MOD, {"lat": 44.4, "notes": "from sheet"})])
    await sync(b, hub)
    await sync(b, hub)
    rc = b.receipt(sheet)
    assert rc is not None and rc.state == ReceiptState.RESOLVED
    fix = b.receipt(rc.resolved_by)
    assert fix is not None and fix.state == ReceiptState.ACCEPTED
    view = HistoryView(b)
    qtbot.addWidget(view)
    view.set_record(SITE, "s3")
    m = view.model
    assert m.headerData(4, Qt.Orientation.Horizontal) == "Note"
    notes = {m.entry(i).rev: m.data(m.index(i, 4)) for i in range(m.rowCount())}
    assert notes[rc.conflicts[0].rev] == (f"had your values already (lat): your edit {sheet} "
                                          "settled by itself (same values on both sides)")
    assert notes[fix.rev] == (f"your other changes of edit {sheet}, sent when it settled by "
                              "itself (same values on both sides)")
    assert sum(bool(n) for n in notes.values()) == 2
    row = next(i for i in range(m.rowCount()) if m.entry(i).rev == fix.rev)
    view.select_row(row)
    assert view.as_of.text().startswith(f"As of {short_rev(fix.rev)} (")
    assert view.as_of.text().endswith(f"(your other changes of edit {sheet}, sent when it "
                                      "settled by itself (same values on both sides))")
    a.close()
    b.close()
